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
  udppeer HOST PORT     a UDP service that answers each datagram with
                        "peer ADDR PORT" (what recvfrom() says), a newline
                        and the datagram
  udpproxy HOST PORT    a UDP service whose every datagram must start with a
                        PROXY v2 header (UDP, PROXY command): answers "proxy
                        SRC SPORT DST DPORT", a newline and the rest of the
                        datagram; or "bad header: WHY"
  uask HOST PORT N [HEX]
                        sends N datagrams "hello I" (or the bytes HEX once)
                        from one socket, printing each answer on a line of
                        its own (newlines as "|"), or "timeout" after 3 s
"""
import errno
import ipaddress
import socket
import struct
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


def udp_serve(host, port, answer):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    while True:
        data, addr = sock.recvfrom(65535)
        sock.sendto(answer(data, addr), addr)


def udp_peer(data, addr):
    return "peer {} {}\n".format(addr[0], addr[1]).encode() + data


SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def udp_proxy(data, addr):
    """The header as HAProxy's proxy-protocol.txt defines it, checked
    strictly: a UDP visitor, one header, the rest is the payload."""
    if len(data) < 16 or data[:12] != SIGNATURE:
        return b"bad header: no signature"
    if data[12] != 0x21:
        return "bad header: version and command 0x{:02x}".format(data[12]).encode()
    length = struct.unpack("!H", data[14:16])[0]
    if data[13] == 0x12 and length >= 12:
        size, kind = 4, ipaddress.IPv4Address
    elif data[13] == 0x22 and length >= 36:
        size, kind = 16, ipaddress.IPv6Address
    else:
        return "bad header: family 0x{:02x}, length {}".format(data[13], length).encode()
    if len(data) < 16 + length:
        return b"bad header: cut short"
    block = data[16:16 + 2 * size + 4]
    src, dst = kind(block[:size]), kind(block[size:2 * size])
    sport, dport = struct.unpack("!HH", block[2 * size:])
    return "proxy {} {} {} {}\n".format(src, sport, dst, dport).encode() + data[16 + length:]


def udp_ask(host, port, count, payload):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(3)
    messages = [payload] if payload is not None else \
        ["hello {}".format(i + 1).encode() for i in range(count)]
    for m in messages:
        s.sendto(m, (host, int(port)))
        try:
            print(s.recv(65535).decode(errors="replace").replace("\n", "|"), flush=True)
        except socket.timeout:
            print("timeout", flush=True)
    s.close()


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
    elif cmd == "udppeer":
        udp_serve(argv[1], argv[2], udp_peer)
    elif cmd == "udpproxy":
        udp_serve(argv[1], argv[2], udp_proxy)
    elif cmd == "uask":
        udp_ask(argv[1], argv[2], int(argv[3]), bytes.fromhex(argv[4]) if len(argv) > 4 else None)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
