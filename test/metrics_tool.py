#!/usr/bin/python3
"""Helpers of metrics_test.sh.

  driver HOST PORT     a visitor of HOST:PORT driven by lines on stdin, one
                       answer line each on stdout:
                         connect            open a connection: "ok INDEX"
                         echo INDEX N       send N bytes, read them back: "ok"
                         refused            a connection the relay resets at
                                            once: "refused" (or "open")
                         close INDEX        "ok"
                         udp PORT N SIZE    N datagrams of SIZE bytes to HOST:PORT,
                                            one at a time, each echo awaited:
                                            "ok ECHOED"
  hold HOST PORT N     opens N connections that send nothing: "held N", then
                       "closed" once the server has closed them all (at
                       most 60 s)
  check FILE           parses FILE with prometheus_client's parser (the text
                       format): fails on a parse error, a family in more than
                       one block, or one with no TYPE; prints the counts
  value FILE NAME [LABEL=VALUE...]
                       the value of the one sample NAME with those labels
                       (others may be there too); fails unless exactly one
  absent FILE NAME [LABEL=VALUE...]
                       succeeds when no such sample is there
"""
import socket
import sys


def families(path):
    from prometheus_client.parser import text_string_to_metric_families

    with open(path, encoding="utf-8") as f:
        fams = list(text_string_to_metric_families(f.read()))
    names = [f.name for f in fams]
    split = sorted({n for n in names if names.count(n) > 1})
    if split:
        sys.exit(f"families in more than one block: {split}")
    untyped = sorted(f.name for f in fams if f.type not in ("counter", "gauge"))
    if untyped:
        sys.exit(f"families without a counter or gauge TYPE: {untyped}")
    return fams


def matching(path, name, wanted):
    want = dict(w.split("=", 1) for w in wanted)
    return [s for f in families(path) for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items())]


def driver(host, port):
    conns = []
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "connect":
                conns.append(socket.create_connection((host, port), timeout=10))
                answer = f"ok {len(conns) - 1}"
            elif cmd == "echo":
                s, n = conns[int(args[0])], int(args[1])
                data = bytes(i % 251 for i in range(n))
                s.sendall(data)
                got = bytearray()
                while len(got) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                answer = "ok" if got == data else f"got {len(got)} of {n} bytes"
            elif cmd == "refused":
                try:
                    s = socket.create_connection((host, port), timeout=10)
                    s.settimeout(5)
                    answer = "refused" if s.recv(1) == b"" else "open"
                    s.close()
                except ConnectionResetError:
                    answer = "refused"
                except socket.timeout:
                    answer = "open"
            elif cmd == "close":
                conns[int(args[0])].close()
                answer = "ok"
            elif cmd == "udp":
                uport, n, size = (int(a) for a in args)
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(3)
                echoed = 0
                for i in range(n):
                    u.sendto(bytes([i]) * size, (host, uport))
                    try:
                        echoed += u.recv(65535) == bytes([i]) * size
                    except socket.timeout:
                        pass
                u.close()
                answer = f"ok {echoed}"
            else:
                answer = f"unknown command {cmd}"
        except (OSError, IndexError, ValueError) as e:
            answer = f"error {e}"
        print(answer, flush=True)


def hold(host, port, n):
    conns = [socket.create_connection((host, port), timeout=60) for _ in range(n)]
    print(f"held {n}", flush=True)
    for s in conns:
        try:
            s.recv(1)
        except OSError:
            pass
    print("closed", flush=True)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "driver":
        driver(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        fams = families(sys.argv[2])
        print(f"{len(fams)} families, {sum(len(f.samples) for f in fams)} samples")
    elif len(sys.argv) >= 4 and sys.argv[1] == "value":
        hits = matching(sys.argv[2], sys.argv[3], sys.argv[4:])
        if len(hits) != 1:
            sys.exit(f"{len(hits)} samples {sys.argv[3]} {sys.argv[4:]}")
        v = hits[0].value
        print(int(v) if v == int(v) else v)
    elif len(sys.argv) >= 4 and sys.argv[1] == "absent":
        hits = matching(sys.argv[2], sys.argv[3], sys.argv[4:])
        sys.exit(1 if hits else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
