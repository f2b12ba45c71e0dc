"""mapping_tool.py: the outside host and the local services of
test/mapping_test.sh, standard library only. Results go to OUT, one line per
event, flushed at once; every wait is bounded.

  echo NAME HOST PORT   an echo service that answers each line with
                        "NAME: LINE"
  hold HOST PORT OUT [--count N] [--silent] [--max-time SECS]
                        N connections (1); unless --silent, each sends
                        "ping" and writes "reply I TEXT" (or how it ended:
                        reset, eof; reset too when reset while connecting);
                        then "held N". SIGUSR1: each open one sends "ping"
                        again and writes "reply I TEXT". A connection the
                        other side ends writes "reset I SECS" or "eof I SECS"
                        (SECS since it was held). Exits once all have ended,
                        or after SECS (120)
  notify PATH OUT       a unix datagram socket at PATH, as systemd's
                        NOTIFY_SOCKET: each message's lines to OUT
"""
import os
import select
import signal
import socket
import sys
import time


def echo(name, host, port):
    lsock = socket.create_server((host, int(port)), reuse_port=False)
    lsock.listen(64)
    conns = {}
    while True:
        ready, _, _ = select.select([lsock] + list(conns), [], [])
        for s in ready:
            if s is lsock:
                conn, _ = lsock.accept()
                conns[conn] = b""
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                s.close()
                del conns[s]
                continue
            buf = conns[s] + data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    s.sendall(name.encode() + b": " + line + b"\n")
                except OSError:
                    break
            conns[s] = buf


def ask(sock):
    """One "ping" round: the answer's text, or how the connection ended."""
    sock.settimeout(5)
    try:
        sock.sendall(b"ping\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return "eof"
            data += chunk
        return data.decode().strip()
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return "error " + str(e)


def hold(host, port, out_path, count, silent, max_time):
    out = open(out_path, "a", buffering=1)
    wanted = []
    signal.signal(signal.SIGUSR1, lambda *_: wanted.append(1))
    socks = {}
    for i in range(count):
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
        except ConnectionResetError:
            # Accepted, then reset before the handshake was seen through.
            out.write("reply %d reset\n" % i)
            continue
        except OSError as e:
            out.write("connect-failed %d %s\n" % (i, e))
            continue
        socks[i] = s
        if not silent:
            out.write("reply %d %s\n" % (i, ask(s)))
    out.write("held %d\n" % len(socks))
    start = time.monotonic()
    while socks and time.monotonic() - start < max_time:
        if wanted:
            wanted.clear()
            for i, s in list(socks.items()):
                out.write("reply %d %s\n" % (i, ask(s)))
        try:
            ready, _, _ = select.select(list(socks.values()), [], [], 0.1)
        except InterruptedError:
            continue
        for s in ready:
            i = next(k for k, v in socks.items() if v is s)
            try:
                s.setblocking(False)
                data = s.recv(4096)
                how = "eof" if not data else None
            except BlockingIOError:
                continue
            except ConnectionResetError:
                how = "reset"
            except OSError:
                how = "error"
            if how:
                out.write("%s %d %.1f\n" % (how, i, time.monotonic() - start))
                s.close()
                del socks[i]
    out.write("done\n")


def notify(path, out_path):
    out = open(out_path, "a", buffering=1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    while True:
        data = s.recv(4096)
        for line in data.decode(errors="replace").splitlines():
            out.write(line + "\n")


def main(argv):
    if len(argv) == 4 and argv[0] == "echo":
        echo(*argv[1:])
    elif len(argv) >= 4 and argv[0] == "hold":
        count, silent, max_time, rest = 1, False, 120.0, argv[4:]
        while rest:
            if rest[0] == "--count" and len(rest) > 1:
                count, rest = int(rest[1]), rest[2:]
            elif rest[0] == "--max-time" and len(rest) > 1:
                max_time, rest = float(rest[1]), rest[2:]
            elif rest[0] == "--silent":
                silent, rest = True, rest[1:]
            else:
                sys.exit("hold: unknown option " + rest[0])
        hold(argv[1], argv[2], argv[3], count, silent, max_time)
    elif len(argv) == 3 and argv[0] == "notify":
        notify(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
