# The tutorial's server.py (Python 2 in the original), ported to Python 3 and nothing else:
# one client at a time, recv(2048), send (not sendall), listen(5), a line printed per recv.
# Usage: python3 tutorial_server.py PORT
import socket, sys
HOST = '127.0.0.1'
PORT = int(sys.argv[1])
BUFFER_SIZE = 2048
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((HOST, PORT))
sock.listen(5)
print('Server start, listening {}'.format(PORT), flush=True)
while True:
    conn, addr = sock.accept()
    while True:
        data = conn.recv(BUFFER_SIZE)
        if len(data):
            print('Server Recv Data: {}'.format(data))
            conn.send(data)
            print('Server Send Data: {}'.format(data))
        else:
            print('Server Recv Over')
            break
    conn.close()
