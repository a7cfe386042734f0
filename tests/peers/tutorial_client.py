# The tutorial's client.py, ported to Python 3: connect, sendall, recv(10) until every byte came back.
# Exits 0 only if the echo matched the message byte for byte.
import socket
import sys

HOST = sys.argv[1]
PORT = int(sys.argv[2])
message = sys.argv[3].encode() if len(sys.argv) > 3 else b'Hello'

family = socket.AF_INET6 if ':' in HOST else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.connect((HOST, PORT))
received = b''
try:
    sock.sendall(message)
    amount_received = 0
    amount_expected = len(message)
    while amount_received < amount_expected:
        data = sock.recv(10)
        if not data:
            break
        amount_received += len(data)
        received += data
        print('Client Received: {}'.format(data.decode(errors='replace')), flush=True)
finally:
    print('Closing connection to the server', flush=True)
    sock.close()
sys.exit(0 if received == message else 1)
