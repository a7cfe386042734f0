# The tutorial's server.py, ported to Python 3. Prints its port first (it binds port 0 when asked),
# so the test can find it; otherwise the same loop: accept, recv(2048), send back, until recv is empty.
import socket
import sys

HOST = sys.argv[1] if len(sys.argv) > 1 else 'localhost'
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
BUFFER_SIZE = 2048

family = socket.AF_INET6 if ':' in HOST else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.bind((HOST, PORT))
sock.listen(5)
print('Server start, listening {}'.format(sock.getsockname()[1]), flush=True)

# Serve a fixed number of clients, then exit (the test says how many).
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 1
for _ in range(clients):
    conn, addr = sock.accept()
    while True:
        data = conn.recv(BUFFER_SIZE)
        if len(data):
            print('Server Recv Data: {}'.format(data), flush=True)
            conn.sendall(data)
            print('Server Send Data: {}'.format(data), flush=True)
        else:
            print('Server Recv Over', flush=True)
            break
    conn.close()
sock.close()
