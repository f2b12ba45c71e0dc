#!/usr/bin/python3
"""Helpers of status_test.sh: known traffic, JSON fields, control clients.

  tcp HOST PORT N            one connection: N bytes sent, the N echoed read back
  udp HOST PORT COUNT SIZE   COUNT datagrams of SIZE bytes from one source,
                             each echoed back before the next
  field FILE PATH...         the value at each PATH (a.0.b) of the JSON in FILE,
                             one a line: strings as they are, others as JSON,
                             "(missing)" where there is none
  idle SOCKET                a control client that sends nothing: prints
                             "dropped" when the daemon closes it (30 s at most)
  send SOCKET junk|big       sends a line of junk, or 1 MiB without a newline,
                             and prints the answer
  ask SOCKET                 sends {"command":"status"}, prints the answer
"""
import json
import socket
import sys
import time


def tcp(host, port, n):
    data = bytes(i % 251 for i in range(int(n)))
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    if got != data:
        sys.exit(f"echoed {len(got)} bytes, not the {len(data)} sent")
    print("ok")


def udp(host, port, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(int(count)):
        data = bytes([i % 256]) * int(size)
        s.sendto(data, (host, int(port)))
        if s.recv(65535) != data:
            sys.exit(f"datagram {i}: a different reply")
    print("ok")


def field(path, *exprs):
    with open(path) as f:
        doc = json.load(f)
    for expr in exprs:
        v = doc
        for part in expr.split("."):
            try:
                v = v[int(part)] if isinstance(v, list) else v[part]
            except (KeyError, IndexError, ValueError, TypeError):
                v = "(missing)"
                break
        print(v if isinstance(v, str) else json.dumps(v))


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def read_all(s):
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout) as e:
        # A daemon that closes with our request unread resets the
        # connection after its answer.
        if not got:
            got = f"({type(e).__name__})".encode()
    return got.decode(errors="replace").strip()


def idle(path):
    s = connect(path)
    start = time.monotonic()
    got = read_all(s)
    print("dropped" if time.monotonic() - start < 30 else "still open", got)


def send(path, what):
    s = connect(path)
    try:
        if what == "junk":
            s.sendall(b"hello, daemon\n")
        else:
            s.sendall(b"x" * (1 << 20))
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(read_all(s))


def ask(path):
    s = connect(path)
    try:
        s.sendall(b'{"command":"status"}\n')
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused at once: the answer is there to read
    print(read_all(s))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"tcp": tcp, "udp": udp, "field": field, "idle": idle, "send": send, "ask": ask}[cmd](*args)
