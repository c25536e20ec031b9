#!/usr/bin/env bash
# Memory of small hashes: loads the same HASHES hashes of FIELDS fields each
# (HSET h:N field1 value-N ... , pipelined through `redis-cli --pipe`) into
# redis-server and into kvick, and reports each server's resident memory
# (VmRSS of /proc/PID/status) and INFO used_memory, before and after the load,
# and the kvick/redis ratio of what the load added.
#
# Usage (from anywhere):
#   bench/memory.sh
#   HASHES=100000 KVICK_THREADS=2 bench/memory.sh
#
# Environment:
#   HASHES=1000000      number of hashes
#   FIELDS=5            fields per hash
#   KVICK_THREADS=1     kvick --threads
#   NOBUILD=1           skip `cargo build --release`
#
# Both servers run with persistence off and their built-in defaults, so a
# 5-field hash is listpack-encoded in both (OBJECT ENCODING is printed).
# kvick's used_memory is its resident set; Redis' is what its allocator
# (jemalloc) hands out, so RSS is the like-for-like column.
set -euo pipefail
cd "$(dirname "$0")/.."

HASHES=${HASHES:-1000000}
FIELDS=${FIELDS:-5}
KVICK_THREADS=${KVICK_THREADS:-1}
OUT=$(mktemp -d /tmp/kvick-memory.XXXXXX)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PIDS=()

[[ -n ${NOBUILD:-} ]] || cargo build --release --bin kvick >&2
KVICK=$PWD/target/release/kvick

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The load, in RESP, generated once for both servers.
python3 - "$HASHES" "$FIELDS" >"$OUT/load.resp" <<'EOF'
import sys
n, fields = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
for i in range(n):
    args = [b"HSET", b"h:%d" % i]
    for f in range(1, fields + 1):
        args += [b"field%d" % f, b"value-%d" % i]
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
EOF

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)/\1/p'; }

declare -A ADDED_RSS ADDED_USED
printf '%-6s %14s %14s %14s %14s %10s %10s\n' server "rss before" "rss after" "used before" "used after" "B/hash rss" encoding
for s in redis kvick; do
    port=$(free_port)
    case $s in
    redis) (cd "$OUT" && exec redis-server --port "$port" --save '' --appendonly no --daemonize no) >"$OUT/$s.log" 2>&1 & ;;
    kvick) (cd "$OUT" && exec "$KVICK" --port "$port" --threads "$KVICK_THREADS") >"$OUT/$s.log" 2>&1 & ;;
    esac
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    rss0=$(rss_kb "$pid")
    used0=$(used_memory "$port")
    redis-cli -p "$port" --pipe <"$OUT/load.resp" >"$OUT/$s.pipe.txt" 2>&1 || {
        cat "$OUT/$s.pipe.txt" >&2
        exit 1
    }
    keys=$(redis-cli -p "$port" dbsize)
    [[ $keys == "$HASHES" ]] || { echo "$s holds $keys keys, expected $HASHES" >&2; exit 1; }
    rss1=$(rss_kb "$pid")
    used1=$(used_memory "$port")
    ADDED_RSS[$s]=$(((rss1 - rss0) * 1024))
    ADDED_USED[$s]=$((used1 - used0))
    printf '%-6s %14s %14s %14s %14s %10s %10s\n' "$s" "$((rss0 * 1024))" "$((rss1 * 1024))" "$used0" "$used1" \
        "$((ADDED_RSS[$s] / HASHES))" "$(redis-cli -p "$port" object encoding h:0)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
python3 -c "print(f'kvick/redis, memory added by the load: RSS {${ADDED_RSS[kvick]} / ${ADDED_RSS[redis]}:.2f}, used_memory {${ADDED_USED[kvick]} / ${ADDED_USED[redis]}:.2f}')"
