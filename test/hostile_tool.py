"""hostile_tool.py: the hostile outside host and the local services of
test/hostile_test.sh, standard library only. One line of results on stdout per
mode; every wait is bounded.

  backend DIR PORT...   services on 127.0.0.1, by position: 1st "urgent" (sends
                        "ab", urgent "x", "cd" at once, stores what it gets in
                        DIR/urgent.out), 2nd "echo", 3rd "half" (shuts its
                        sending side at once, reads to the end)
  urgent HOST PORT SECS sends "AB", urgent "X", "CD", holds the connection SECS,
                        prints got=WHAT IT RECEIVED
  idle HOST PORT SECS   one echo round, then silence: prints ended=reset|eof|no
                        and after=SECONDS it took
  half HOST PORT SECS   waits for the service's FIN, then silence; likewise
  echo HOST PORT [SECS] one echo round, waiting up to SECS (1) for the answer:
                        prints ok or failed
  bulk HOST PORT BYTES  sends BYTES of a pattern to the echo service while
                        reading them back (30 s at most): prints ok, or what
                        differed
  hold HOST PORT N SECS SRC...  N connections from each SRC, each echoing a
                        byte every 0.5 s; once each is served or refused (5 s
                        at most) prints served=K refused=R pending=P after=T
                        (refused: reset or closed before any echo), holds until
                        SECS, closes all and prints closed
"""
import select
import selectors
import socket
import sys
import time


def receive(sock, size):
    """recv() on a non-blocking socket: the data, b"" at the end (EOF or an
    error), or None when there is nothing yet."""
    try:
        return sock.recv(size)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def backend(out_dir, ports):
    sel = selectors.DefaultSelector()
    modes = ["urgent", "echo", "half"]
    for mode, port in zip(modes, ports):
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", int(port)))
        lsock.listen(512)
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ, ("listen", mode))
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            kind, mode = key.data
            if kind == "listen":
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                if mode == "urgent":
                    conn.sendall(b"ab")
                    time.sleep(0.1)
                    conn.send(b"x", socket.MSG_OOB)
                    time.sleep(0.1)
                    conn.sendall(b"cd")
                elif mode == "half":
                    conn.shutdown(socket.SHUT_WR)
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, ("conn", mode))
                continue
            conn = key.fileobj
            data = receive(conn, 65536)
            if data is None:
                continue
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            if mode == "urgent":
                with open(out_dir + "/urgent.out", "ab") as f:
                    f.write(data)
            elif mode == "echo":
                try:
                    conn.sendall(data)
                except OSError:
                    pass


def connect(host, port, src=None):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if src:
        s.bind((src, 0))
    s.settimeout(5)
    s.connect((host, int(port)))
    return s


def wait_end(s, secs):
    """Reads until the connection ends; returns (how, seconds)."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < secs:
        try:
            if not s.recv(4096):
                return "eof", time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return "reset", time.monotonic() - t0
    return "no", time.monotonic() - t0


def urgent(host, port, secs):
    s = connect(host, port)
    s.sendall(b"AB")
    time.sleep(0.1)
    s.send(b"X", socket.MSG_OOB)
    time.sleep(0.1)
    s.sendall(b"CD")
    got = b""
    end = time.monotonic() + float(secs)
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        if not data:
            break
        got += data
    s.close()
    print("got=" + got.decode(errors="replace"), flush=True)


def idle(host, port, secs):
    s = connect(host, port)
    s.sendall(b"hi")
    if s.recv(2) != b"hi":
        print("ended=early after=0", flush=True)
        return
    how, after = wait_end(s, float(secs))
    print("ended=%s after=%.1f" % (how, after), flush=True)


def half(host, port, secs):
    s = connect(host, port)
    how, _ = wait_end(s, 5)
    if how != "eof":
        print("ended=%s-before-fin after=0" % how, flush=True)
        return
    # Past the FIN, reads say EOF for good: a reset shows as a hang-up.
    p = select.poll()
    p.register(s, select.POLLHUP | select.POLLERR)
    t0 = time.monotonic()
    while time.monotonic() - t0 < float(secs):
        if p.poll(200):
            print("ended=reset after=%.1f" % (time.monotonic() - t0), flush=True)
            return
    print("ended=no after=%.1f" % (time.monotonic() - t0), flush=True)


def echo(host, port, secs="1"):
    try:
        s = connect(host, port)
        s.settimeout(float(secs))
        s.sendall(b"hello")
        got = b""
        while len(got) < 5:
            data = s.recv(5 - len(got))
            if not data:
                break
            got += data
        s.close()
        print("ok" if got == b"hello" else "failed", flush=True)
    except OSError:
        print("failed", flush=True)


def bulk(host, port, size):
    size = int(size)
    data = bytes(i * 7 % 251 for i in range(size))
    s = connect(host, port)
    s.setblocking(False)
    sent, got = 0, bytearray()
    end = time.monotonic() + 30
    while len(got) < size and time.monotonic() < end:
        want_write = [s] if sent < size else []
        readable, writable, _ = select.select([s], want_write, [], 0.5)
        if writable:
            try:
                sent += s.send(data[sent:sent + 65536])
            except BlockingIOError:
                pass
        if readable:
            chunk = receive(s, 65536)
            if chunk == b"":
                break
            if chunk:
                got += chunk
    s.close()
    if got == data:
        print("ok", flush=True)
    else:
        print("failed: sent %d, got %d bytes back, equal: %s" % (sent, len(got), got == data[:len(got)]),
              flush=True)


def hold(host, port, n, secs, sources):
    sel = selectors.DefaultSelector()
    conns = {}  # socket: [served, ended]
    reset_early = 0  # reset so soon that connect() itself saw it
    for _ in range(int(n)):
        for src in sources:
            try:
                s = connect(host, port, src)
            except ConnectionError:
                reset_early += 1
                continue
            s.setblocking(False)
            conns[s] = [False, False]
            sel.register(s, selectors.EVENT_READ)
    t0 = time.monotonic()
    next_ping = t0
    reported = False
    while time.monotonic() - t0 < float(secs):
        now = time.monotonic()
        if now >= next_ping:
            for s, st in conns.items():
                if not st[1]:
                    try:
                        s.send(b"p")
                    except OSError:
                        st[1] = True
            next_ping = now + 0.5
        served = sum(1 for st in conns.values() if st[0] and not st[1])
        refused = reset_early + sum(1 for st in conns.values() if st[1] and not st[0])
        if not reported and (served + refused == len(conns) + reset_early or now - t0 >= 5):
            print("served=%d refused=%d pending=%d after=%.1f" %
                  (served, refused, len(conns) + reset_early - served - refused, now - t0),
                  flush=True)
            reported = True
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            data = receive(s, 4096)
            if data is None:
                continue
            if data:
                conns[s][0] = True
            else:
                conns[s][1] = True
                sel.unregister(s)
    for s in conns:
        s.close()
    print("closed", flush=True)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "backend":
        backend(args[0], args[1:])
    elif mode == "urgent":
        urgent(*args)
    elif mode == "idle":
        idle(*args)
    elif mode == "half":
        half(*args)
    elif mode == "echo":
        echo(*args)
    elif mode == "bulk":
        bulk(*args)
    elif mode == "hold":
        hold(args[0], args[1], args[2], args[3], args[4:])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
