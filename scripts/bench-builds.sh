#!/usr/bin/env bash
# Compares kvick builds with each other (not with Redis): for each round, each
# binary in turn (A B A B ...) is started, prefilled with KEYS keys, and
# loaded with REQUESTS requests by kvick-bench (50 connections, 1:10
# SET:GET); prints ops/s and the server's CPU µs per request.
# With RB_TESTS and/or RB_COMMANDS (as in scripts/bench.sh), the load is
# instead redis-benchmark (-c 50 -r 1000000 -P PIPELINE), one line per test,
# the tests run in order on one server (so LPOP pops what LPUSH pushed).
#
# Usage: scripts/bench-builds.sh OLD_BINARY NEW_BINARY [...]
#   THREADS=2 PIPELINE=16 ROUNDS=3 KEYS=200000 REQUESTS=400000
#   THREADS=1 SERVER_CPUS=0 RB_TESTS=lpush,sadd RB_COMMANDS='XADD s * f v'
# Keep a copy of the old binary first (cp target/release/kvick /tmp/kvick-old).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2} PIPELINE=${PIPELINE:-16} ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-200000} REQUESTS=${REQUESTS:-400000}
SERVER_CPUS=${SERVER_CPUS:-0,1}
RB_TESTS=${RB_TESTS:-} RB_COMMANDS=${RB_COMMANDS:-}
LOADGEN=target/release/kvick-bench
ulimit -S -l "$(ulimit -H -l)"
ticks=$(getconf CLK_TCK)

# A test is "-t NAME" or a whole redis-benchmark command; none means kvick-bench.
tests=()
for t in $(tr ',' ' ' <<<"$RB_TESTS"); do tests+=("-t $t"); done
IFS=';' read -ra commands <<<"$RB_COMMANDS"
for c in "${commands[@]}"; do [[ -n ${c// /} ]] && tests+=("$c"); done
((${#tests[@]})) || tests=(kvick-bench)

port=17700
for r in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        port=$((port + 1))
        # Server on SERVER_CPUS (CPUs 0-1 as in scripts/bench.sh); the client on CPU 1.
        taskset -c "$SERVER_CPUS" "$bin" --port "$port" --threads "$THREADS" --save '' >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        for t in "${tests[@]}"; do
            [[ $t != kvick-bench ]] || "$LOADGEN" --port "$port" --keys "$KEYS" --prefill --requests 0 >/dev/null
            c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            if [[ $t == kvick-bench ]]; then
                res=$(taskset -c 1 "$LOADGEN" --port "$port" --keys "$KEYS" --pipeline "$PIPELINE" --requests "$REQUESTS" | grep RESULT)
                ops=$(sed 's/.*ops_per_sec=\([0-9]*\).*/\1/' <<<"$res")
            else
                read -ra words <<<"$t"
                ops=$(taskset -c 1 redis-benchmark -p "$port" -c 50 -r 1000000 -n "$REQUESTS" -P "$PIPELINE" -q "${words[@]}" |
                    tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
            fi
            c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            cpu=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / t * 1e6 / n }')
            echo "round $r $t $bin: $ops ops/s, $cpu CPU µs/req"
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
