#!/usr/bin/env bash
# Compares kvick builds with each other (not with Redis): for each round, each
# binary in turn (A B A B ...) is started, prefilled with KEYS keys, and
# loaded with REQUESTS requests by kvick-bench (50 connections, 1:10
# SET:GET); prints ops/s and the server's CPU µs per request.
#
# Usage: scripts/bench-builds.sh OLD_BINARY NEW_BINARY [...]
#   THREADS=2 PIPELINE=16 ROUNDS=3 KEYS=200000 REQUESTS=400000
# Keep a copy of the old binary first (cp target/release/kvick /tmp/kvick-old).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2} PIPELINE=${PIPELINE:-16} ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-200000} REQUESTS=${REQUESTS:-400000}
LOADGEN=target/release/kvick-bench
ulimit -S -l "$(ulimit -H -l)"
port=17700
for r in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        port=$((port + 1))
        # Server on CPUs 0-1 as in scripts/bench.sh; the client on CPU 1.
        taskset -c 0,1 "$bin" --port "$port" --threads "$THREADS" --save '' >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        "$LOADGEN" --port "$port" --keys "$KEYS" --prefill --requests 0 >/dev/null
        c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        res=$(taskset -c 1 "$LOADGEN" --port "$port" --keys "$KEYS" --pipeline "$PIPELINE" --requests "$REQUESTS" | grep RESULT)
        c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        ticks=$(getconf CLK_TCK)
        ops=$(sed 's/.*ops_per_sec=\([0-9]*\).*/\1/' <<<"$res")
        cpu=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / t * 1e6 / n }')
        echo "round $r $bin: $ops ops/s, $cpu CPU µs/req"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
