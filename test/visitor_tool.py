"""visitor_tool.py: the services and the outside host of
test/visitor_test.sh, standard library only. Every wait is bounded.

  peer HOST PORT        a service that answers each connection with
                        "peer ADDR PORT" (what getpeername() says) and then
                        echoes what it reads
  first HOST PORT OUT   a service that writes the first bytes of each
                        connection to OUT (Python's repr, one line each) and
                        answers "ok"
  ask HOST PORT [SRC]   connects (from SRC when given), sends "hello", and
                        prints what comes back until the end, or "reset",
                        or "connect-failed: ..." (a reset at any point is
                        "reset"); at most 5 s
  send HOST PORT HEX [SRC]
                        connects, sends the bytes HEX, and prints what comes
                        back, as ask does
"""
import errno
import socket
import sys
import threading


def serve(host, port, handler):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, int(port)))
    lsock.listen(64)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def peer(conn):
    with conn:
        conn.settimeout(10)
        addr = conn.getpeername()
        try:
            conn.sendall("peer {} {}\n".format(addr[0], addr[1]).encode())
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return


def first(out_path):
    lock = threading.Lock()

    def handler(conn):
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(200)
                conn.sendall(b"ok\n")
            except OSError as e:
                data = str(e).encode()
            with lock, open(out_path, "a") as out:
                out.write(repr(data) + "\n")
    return handler


# How a reset shows, depending on when it comes: while connecting (a relay
# accepts, then resets), while sending, or while reading.
RESET = (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN)


def talk(host, port, payload, src):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    got = b""
    try:
        if src:
            s.bind((src, 0))
        try:
            s.connect((host, int(port)))
        except OSError as e:
            if e.errno in RESET:
                raise
            print("connect-failed: {}".format(e))
            return
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while True:
            data = s.recv(4096)
            if not data:
                break
            got += data
    except OSError as e:
        print(got.decode(errors="replace") + ("reset" if e.errno in RESET else str(e)))
        return
    finally:
        s.close()
    print(got.decode(errors="replace"), end="")


def main(argv):
    cmd = argv[0]
    if cmd == "peer":
        serve(argv[1], argv[2], peer)
    elif cmd == "first":
        serve(argv[1], argv[2], first(argv[3]))
    elif cmd == "ask":
        talk(argv[1], argv[2], b"hello\n", argv[3] if len(argv) > 3 else None)
    elif cmd == "send":
        talk(argv[1], argv[2], bytes.fromhex(argv[3]), argv[4] if len(argv) > 4 else None)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
