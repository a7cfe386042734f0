"""Toxiproxy's Python client (toxiproxy-python, from PyPI) against `socklab proxy --api`.

Run by tests/toxiproxy_clients.rs with API=HOST:PORT (the API) and ECHO=HOST:PORT (a real echo
server). Every effect is seen from a real socket; timing bounds are lower bounds or generous.
"""
import os
import socket
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

api_host, api_port = os.environ["API"].rsplit(":", 1)
echo = os.environ["ECHO"]
server = Toxiproxy()
server.update_api_consumer(api_host, int(api_port))
assert server.running(), "the API answers connections"
assert b"socklab" in server.version(), server.version()

proxy = server.create(upstream=echo, name="py_echo", listen="127.0.0.1:0")
host, port = proxy.listen.rsplit(":", 1)
addr = (host, int(port))


def connect():
    return socket.create_connection(addr, timeout=20)


def roundtrip(msg=b"hello"):
    with connect() as s:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk:
                break
            got += chunk
        return got


def read_to_end(s):
    """Everything until EOF; 'reset' if the connection was reset."""
    got = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return "reset"
        if not chunk:
            return got
        got += chunk


assert roundtrip() == b"hello"
try:
    server.create(upstream=echo, name="py_echo")
    raise AssertionError("a second proxy of the same name was accepted")
except ProxyExists:
    pass

# latency: added, felt, updated, removed
proxy.add_toxic(type="latency", attributes={"latency": 1000})
assert "latency_downstream" in proxy.toxics()
start = time.monotonic()
assert roundtrip() == b"hello"
assert time.monotonic() - start >= 1.0, "latency delays the echo"
# toxiproxy-python has no update call; its own API consumer posts Toxiproxy's update request.
APIConsumer.post("/proxies/py_echo/toxics/latency_downstream", json={"attributes": {"latency": 0}})
assert proxy.get_toxic("latency_downstream").attributes["latency"] == 0
start = time.monotonic()
assert roundtrip() == b"hello"
assert time.monotonic() - start < 1.0, "the update took effect"
proxy.destroy_toxic("latency_downstream")
assert proxy.toxics() == {}

# reset_peer: the client gets an RST
proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
try:
    # The RST can come as soon as the handshake is done: connect or send may see it first.
    with connect() as s:
        s.sendall(b"x")
        outcome = read_to_end(s)
except (ConnectionResetError, BrokenPipeError):
    outcome = "reset"
assert outcome == "reset", f"reset_peer resets the client, got {outcome!r}"
proxy.destroy_toxic("reset_peer_downstream")

# limit_data: closed after 4 bytes came back
proxy.add_toxic(type="limit_data", attributes={"bytes": 4})
with connect() as s:
    s.sendall(b"Hello")
    assert read_to_end(s) == b"Hell", "limit_data closes after 4 bytes"
proxy.destroy_toxic("limit_data_downstream")

# timeout: nothing comes back, then the connection closes
proxy.add_toxic(type="timeout", attributes={"timeout": 300})
with connect() as s:
    start = time.monotonic()
    s.sendall(b"hi")
    assert read_to_end(s) == b"", "timeout forwards nothing, then closes"
    assert time.monotonic() - start >= 0.3
proxy.destroy_toxic("timeout_downstream")
assert roundtrip() == b"hello", "healed"

# disable / enable
proxy.disable()
try:
    connect().close()
    raise AssertionError("a disabled proxy accepted a connection")
except ConnectionRefusedError:
    pass
proxy.enable()
assert roundtrip() == b"hello"
with proxy.down():
    try:
        connect().close()
        raise AssertionError("a proxy taken down accepted a connection")
    except ConnectionRefusedError:
        pass
assert roundtrip() == b"hello"

# reset: enabled again, no toxics
proxy.add_toxic(type="latency", attributes={"latency": 1000})
proxy.disable()
assert server.reset()
assert server.get_proxy("py_echo").enabled
assert proxy.toxics() == {}
assert roundtrip() == b"hello"

# bad requests: Toxiproxy's codes (the client maps them to its exceptions)
try:
    proxy.add_toxic(type="gremlin")
    raise AssertionError("an unknown toxic type was accepted")
except InvalidToxic as e:
    assert b"invalid toxic type" in e.args[0], e.args
try:
    APIConsumer.post("/proxies/py_echo/toxics", data="{not json")
    raise AssertionError("malformed JSON was accepted")
except InvalidToxic as e:
    assert b"bad request body" in e.args[0], e.args
try:
    APIConsumer.get("/proxies/ghost")
    raise AssertionError("an unknown proxy was found")
except NotFound as e:
    assert b"proxy not found" in e.args[0], e.args
taken = APIConsumer.post("/proxies", json={"name": "twin", "upstream": echo, "listen": proxy.listen})
assert taken.status_code == 500 and "EADDRINUSE" in taken.json()["error"], taken.text
assert roundtrip() == b"hello", "the proxy keeps serving after bad requests"

proxy.destroy()
assert server.get_proxy("py_echo") is None
print("toxiproxy-python: all checks passed")
