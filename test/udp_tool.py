#!/usr/bin/python3
"""UDP ends for udp_relay_test.sh (standard library only).

  udp_tool.py echo ADDR:PORT
      Sends every datagram back to its sender. Prints "echo on ADDR:PORT".
  udp_tool.py client --relay ADDR:PORT [--bind IP] [--flows N] [--count N]
                     [--window N] [--deadline S] [--max-size N]
      N sockets (flows), each sending in turn datagrams of 1..N (1400) bytes whose
      bytes follow from (flow, sequence), at most --window outstanding in all
      so that no socket buffer on the way overflows, one at a time per flow,
      and checks each reply byte for byte. A reply not back within 1 s is
      lost; one that comes later is late (not corrupt). Prints
      "sent N received N lost N late N corrupt N seconds S"; exits 1 on any
      corruption or when more than 0.1 % were lost, else 0.
  udp_tool.py send --to ADDR:PORT --bind IP [--size N]
      One datagram from IP, for the filter and size checks.
"""
import argparse
import collections
import random
import select
import socket
import sys
import time

MAX_SIZE = 1400
LOST_AFTER = 1.0


def addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def payload(flow, seq, max_size=MAX_SIZE):
    rng = random.Random(flow * 1000003 + seq)
    return rng.randbytes(rng.randint(1, max_size))


def echo(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(addr(args.addr))
    print("echo on %s:%d" % s.getsockname(), flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def client(args):
    relay = addr(args.relay)
    socks, by_fd = [], {}
    ep = select.epoll()
    for i in range(args.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((args.bind, 0))
        s.setblocking(False)
        socks.append(s)
        by_fd[s.fileno()] = i
        ep.register(s.fileno(), select.EPOLLIN)
    per_flow = args.count // args.flows
    next_seq = [0] * args.flows
    waiting = {}  # flow -> (payload, sent at)
    lost = [dict() for _ in range(args.flows)]  # flow -> {payload: count}
    idle = collections.deque(range(args.flows))
    sent = received = n_lost = late = corrupt = 0
    start = time.monotonic()
    deadline = start + args.deadline
    while (idle or waiting) and time.monotonic() < deadline:
        while idle and len(waiting) < args.window:
            f = idle.popleft()
            if next_seq[f] >= per_flow:
                continue
            p = payload(f, next_seq[f], args.max_size)
            next_seq[f] += 1
            try:
                socks[f].sendto(p, relay)
            except BlockingIOError:
                idle.appendleft(f)
                next_seq[f] -= 1
                break
            sent += 1
            waiting[f] = (p, time.monotonic())
        for fd, _ in ep.poll(0.05):
            f = by_fd[fd]
            while True:
                try:
                    data = socks[f].recv(65535)
                except BlockingIOError:
                    break
                want = waiting.get(f)
                if want and data == want[0]:
                    received += 1
                    del waiting[f]
                    idle.append(f)
                elif lost[f].get(data):
                    lost[f][data] -= 1
                    late += 1
                else:
                    corrupt += 1
                    print("corrupt reply on flow %d: %d bytes, expected %s" %
                          (f, len(data), len(want[0]) if want else "none"), file=sys.stderr)
        now = time.monotonic()
        for f, (p, at) in list(waiting.items()):
            if now - at > LOST_AFTER:
                n_lost += 1
                lost[f][p] = lost[f].get(p, 0) + 1
                del waiting[f]
                idle.append(f)
    unsent = args.flows * per_flow - sent
    print("sent %d received %d lost %d late %d corrupt %d unsent %d seconds %.1f" %
          (sent, received, n_lost + len(waiting), late, corrupt, unsent, time.monotonic() - start),
          flush=True)
    return 1 if corrupt or unsent or n_lost + len(waiting) > args.count // 1000 else 0


def send(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.bind, 0))
    s.sendto(b"x" * args.size, addr(args.to))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("echo")
    e.add_argument("addr")
    c = sub.add_parser("client")
    c.add_argument("--relay", required=True)
    c.add_argument("--bind", default="0.0.0.0")
    c.add_argument("--flows", type=int, default=1000)
    c.add_argument("--count", type=int, default=100000)
    c.add_argument("--window", type=int, default=128)
    c.add_argument("--deadline", type=float, default=120)
    c.add_argument("--max-size", type=int, default=MAX_SIZE)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--bind", required=True)
    s.add_argument("--size", type=int, default=1)
    args = ap.parse_args()
    if args.mode == "echo":
        echo(args)
    elif args.mode == "client":
        return client(args)
    else:
        send(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
