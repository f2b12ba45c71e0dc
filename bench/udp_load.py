#!/usr/bin/python3
"""UDP load and services for bench/udp.sh (standard library only). Every mode
is bounded in time; the load modes in count too.

  udp_load.py echo ADDR:PORT
      The request/response service: sends every datagram back to its sender.
  udp_load.py rr --to ADDR:PORT [--clients N] [--size N] [--time S] [--max N]
                 [--interval MS]
      N clients, each a socket of its own (a flow), each with one datagram of
      --size bytes outstanding at a time: sends, waits for its reply, sends
      the next (ping-pong), for --time seconds or --max requests in all. A
      reply not back within 0.5 s counts as lost and the client sends its next
      request; replies are matched by (client, sequence), so a late one is
      not taken for the next. With --interval (paced, open loop), each
      client sends a request every MS milliseconds whether the last one was
      answered or not: the load is the same with or without losses. Prints
      "answers N lost N late N seconds S rate R p50_ms X p99_ms Y"
      (rate: answers per second; latency of the answered requests only).
  udp_load.py sink ADDR:PORT --deadline S
      Counts the datagrams and bytes it receives; exits 1 s after the last
      one (or at the deadline) and prints "received N bytes B".
  udp_load.py send --to ADDR:PORT [--size N] [--time S] [--rate MBIT] [--max N]
      One flow: datagrams of --size bytes for --time seconds (at most --max), paced to
      --rate Mbit/s (0: as fast as it can). Prints "sent N bytes B seconds S".
  udp_load.py probe --to ADDR:PORT [--time S]
      Exits 0 as soon as a datagram comes back, 1 after --time seconds.
"""
import argparse
import heapq
import select
import socket
import struct
import sys
import time

LOST_AFTER = 0.5


def addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def udp_socket(rcvbuf=4 << 20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return s


def echo(args):
    s = udp_socket()
    s.bind(addr(args.addr))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def rr_sockets(args):
    ep = select.epoll()
    socks, by_fd = [], {}
    for i in range(args.clients):
        s = udp_socket(1 << 20)
        s.connect(addr(args.to))
        s.setblocking(False)
        socks.append(s)
        by_fd[s.fileno()] = i
        ep.register(s.fileno(), select.EPOLLIN)
    return ep, socks, by_fd


def replies(ep, socks, by_fd, timeout):
    """(client, sequence, time) of each reply that comes in within timeout."""
    for fd, _ in ep.poll(timeout):
        i = by_fd[fd]
        while True:
            try:
                data = socks[i].recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            c, n = struct.unpack_from("!II", data)
            yield (i, n if c == i else -1), time.monotonic()


def rr(args):
    ep, socks, by_fd = rr_sockets(args)
    pad = b"r" * max(0, args.size - 8)
    pending = {}  # (client, sequence) -> sent at
    seq = [0] * args.clients
    lat = []
    sent = lost = late = 0
    start = time.monotonic()
    end = start + args.time
    interval = args.interval / 1000
    due = []  # paced: (time, client) of each client's next request

    def send(i, now):
        nonlocal sent
        seq[i] += 1
        pending[(i, seq[i])] = now
        sent += 1
        try:
            socks[i].send(struct.pack("!II", i, seq[i]) + pad)
        except (BlockingIOError, ConnectionRefusedError):
            pass  # counts as lost after LOST_AFTER

    for i in range(args.clients):
        if interval:  # spread over one interval, not all at once
            heapq.heappush(due, (start + i * interval / args.clients, i))
        else:
            send(i, start)
    now = last_sweep = start
    while now < end and sent < args.max:
        wait = min(0.05, max(0.0, due[0][0] - now)) if due else 0.05
        for key, at in replies(ep, socks, by_fd, wait):
            was = pending.pop(key, None)
            if was is None:
                late += 1
                continue
            lat.append(at - was)
            # Closed loop: the next request when the reply is in.
            if not interval and at < end and sent < args.max:
                send(key[0], at)
        now = time.monotonic()
        # Paced (open loop): each client's next request on its schedule,
        # whether the reply to the last one came or not, so that losses
        # do not lighten the load.
        while due and due[0][0] <= now and sent < args.max:
            at, i = heapq.heappop(due)
            send(i, now)
            heapq.heappush(due, (at + interval, i))
        if now - last_sweep > 0.05:
            last_sweep = now
            for key, was in list(pending.items()):
                if now - was > LOST_AFTER:
                    lost += 1
                    del pending[key]
                    if not interval and now < end and sent < args.max:
                        send(key[0], now)
    secs = time.monotonic() - start
    lat.sort()
    print("answers %d lost %d late %d seconds %.2f rate %.1f p50_ms %.3f p99_ms %.3f" %
          (len(lat), lost, late, secs, len(lat) / secs, percentile(lat, 0.5) * 1e3,
           percentile(lat, 0.99) * 1e3), flush=True)
    return 0 if lat else 1


def sink(args):
    s = udp_socket(16 << 20)
    s.bind(addr(args.addr))
    n = b = 0
    deadline = time.monotonic() + args.deadline
    # Until the first datagram, wait for it up to the deadline; then until
    # 1 s of silence.
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(min(left, 1.0) if n else left)
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        n += 1
        b += len(data)
    print("received %d bytes %d" % (n, b), flush=True)


def send_load(args):
    s = udp_socket()
    s.connect(addr(args.to))
    data = b"s" * args.size
    n = 0
    start = time.monotonic()
    end = start + args.time
    # Paced in bursts each millisecond: per-datagram sleeps would be far
    # too coarse.
    per_ms = args.rate * 1e6 / 8 / args.size / 1000 if args.rate else 0
    now = start
    while now < end and n < args.max:
        due = int((now - start) * 1000 * per_ms) + 1 if per_ms else n + 64
        while n < min(due, args.max):
            try:
                s.send(data)
            except OSError:
                pass  # a local drop (ENOBUFS) or ICMP refusal: lost like any other
            n += 1
        if per_ms:
            time.sleep(0.001)
        now = time.monotonic()
    print("sent %d bytes %d seconds %.3f" % (n, n * args.size, time.monotonic() - start), flush=True)


def probe(args):
    s = udp_socket(1 << 20)
    s.connect(addr(args.to))
    end = time.monotonic() + args.time
    while time.monotonic() < end:
        try:
            s.send(b"probe")
        except ConnectionRefusedError:
            pass
        if select.select([s], [], [], 0.2)[0]:
            try:
                s.recv(65535)
                return 0
            except ConnectionRefusedError:
                pass
    return 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    sub.add_parser("echo").add_argument("addr")
    r = sub.add_parser("rr")
    r.add_argument("--to", required=True)
    r.add_argument("--clients", type=int, default=64)
    r.add_argument("--size", type=int, default=200)
    r.add_argument("--time", type=float, default=5)
    r.add_argument("--max", type=int, default=10_000_000)
    r.add_argument("--interval", type=float, default=0)
    k = sub.add_parser("sink")
    k.add_argument("addr")
    k.add_argument("--deadline", type=float, required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--size", type=int, default=1200)
    s.add_argument("--time", type=float, default=5)
    s.add_argument("--rate", type=float, default=0)
    s.add_argument("--max", type=int, default=10_000_000)
    p = sub.add_parser("probe")
    p.add_argument("--to", required=True)
    p.add_argument("--time", type=float, default=10)
    args = ap.parse_args()
    return {"echo": echo, "rr": rr, "sink": sink, "send": send_load, "probe": probe}[args.mode](args) or 0


if __name__ == "__main__":
    sys.exit(main())
