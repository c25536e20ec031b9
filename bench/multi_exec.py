#!/usr/bin/env python3
"""MULTI/EXEC load for bench/scripting.sh (redis-benchmark sends one command
per request and cannot group a transaction).

    multi_exec.py PORT REQUESTS CONNECTIONS [--own] KEY...

Each connection keeps one transaction in flight: MULTI, INCR of every KEY,
EXEC, written at once; a transaction is complete when its EXEC reply (an
array of len(KEY) integers, the only `*N` header in the stream) has arrived.
Prints `RESULT ops=.. secs=.. ops_per_sec=..` (ops: transactions). One
thread and non-blocking sockets, to keep the client as cheap as a Python
client can be; on a 2-core machine it may still be the bottleneck, so the
server's CPU time per transaction is the number to compare.

With --own, connection i uses its own keys `{KEY}:i` instead of KEY: the hash
tag keeps each key in KEY's slot (so on KEY's core), but no two connections'
transactions touch the same key (no contention on the keys' locks).
"""
import selectors
import socket
import sys
import time


def encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def main():
    port, requests, connections = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    keys = sys.argv[4:]
    own = keys[:1] == ["--own"]
    if own:
        keys = keys[1:]

    def transaction(conn):
        names = ["{%s}:%d" % (k, conn) for k in keys] if own else keys
        return encode("MULTI") + b"".join(encode("INCR", k) for k in names) + encode("EXEC")

    marker = b"*%d\r\n" % len(keys)
    sel = selectors.DefaultSelector()
    sent = done = 0
    conns = []
    for _ in range(min(connections, requests)):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b"", transaction(len(conns))])
        conns.append(s)
    start = time.monotonic()
    for s in conns:
        s.sendall(sel.get_key(s).data[1])
        sent += 1
    while done < requests:
        for key, _ in sel.select(timeout=30) or [(None, None)]:
            if key is None:
                sys.exit("multi_exec.py: no reply for 30 s")
            s, state = key.fileobj, key.data
            data = s.recv(65536)
            if not data:
                sys.exit("multi_exec.py: connection closed")
            if b"-" in data:
                sys.exit("multi_exec.py: error reply: %r" % data[:200])
            # The marker may straddle two reads: keep a short tail.
            buf = state[0] + data
            n = buf.count(marker)
            state[0] = buf[-(len(marker) - 1):]
            done += n
            for _ in range(n):
                if sent < requests:
                    s.sendall(state[1])
                    sent += 1
    secs = time.monotonic() - start
    print("RESULT ops=%d secs=%.3f ops_per_sec=%.0f" % (done, secs, done / secs))


main()
