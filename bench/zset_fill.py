#!/usr/bin/env python3
"""Fills one sorted set with N members ("member:0".."member:N-1", score = i)
over one connection, 1000 members per ZADD, pipelined. Used by
bench/zset-memory.sh; prints nothing, exits non-zero on an error reply.

Usage: zset_fill.py PORT KEY N"""
import socket
import sys

port, key, n = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
sock = socket.create_connection(("127.0.0.1", port))
PER_CMD, PIPELINE = 1000, 20


def command(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_replies(count):
    buf = b""
    while buf.count(b"\r\n") < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    if b"-" in [line[:1] for line in buf.split(b"\r\n")]:
        sys.exit("error reply: %r" % buf[:200])


i, pending = 0, []
while i < n:
    args = [b"ZADD", key]
    for j in range(i, min(i + PER_CMD, n)):
        args += [b"%d" % j, b"member:%d" % j]
    i = min(i + PER_CMD, n)
    pending.append(command(args))
    if len(pending) == PIPELINE or i == n:
        sock.sendall(b"".join(pending))
        read_replies(len(pending))
        pending = []
