#!/usr/bin/env bash
# Memory per data set, kvick vs redis-server: loads the same data (RESP
# generated once, pipelined through `redis-cli --pipe`) into each server
# started empty, and reports each server's resident memory (VmRSS of
# /proc/PID/status) and INFO used_memory before and after the load, and the
# kvick/redis ratios of what the load added. Data sets (DATASETS):
#   hashes      HASHES hashes h:N of FIELDS fields each (HSET h:N field1 value-N ...)
#   set         one set of MEMBERS members "member:N" (SADD, 1000 a command)
#   list        one list of ELEMENTS elements "element:N" (RPUSH, 1000 a command)
#   list-holes  the same list with 3 of every 4 elements then deleted from
#               the middle (they are "d" and one LREM l 0 d removes them)
#
# Usage (from anywhere):
#   bench/memory.sh
#   DATASETS="hashes list" HASHES=100000 KVICK_THREADS=2 bench/memory.sh
#
# Environment:
#   DATASETS="hashes set list list-holes"
#   HASHES=1000000 FIELDS=5 MEMBERS=1000000 ELEMENTS=1000000
#   KVICK_THREADS=1     kvick --threads
#   NOBUILD=1           skip `cargo build --release`
#   KVICK=path          another kvick binary (e.g. an older build), implies NOBUILD
#
# Both servers run with persistence off and their built-in defaults, so a
# 5-field hash is listpack-encoded in both (OBJECT ENCODING is printed).
# Like with like: kvick reports its resident set as used_memory (it has no
# allocator count), Redis its allocator's count (jemalloc), which leaves out
# fragmentation and allocator slack that RSS includes. So kvick's RSS growth
# is compared with both Redis' RSS growth and (the stricter target) Redis'
# used_memory growth.
set -euo pipefail
cd "$(dirname "$0")/.."

DATASETS=${DATASETS:-hashes set list list-holes}
HASHES=${HASHES:-1000000}
FIELDS=${FIELDS:-5}
MEMBERS=${MEMBERS:-1000000}
ELEMENTS=${ELEMENTS:-1000000}
KVICK_THREADS=${KVICK_THREADS:-1}
OUT=$(mktemp -d /tmp/kvick-memory.XXXXXX)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PIDS=()

if [[ -z ${KVICK:-} ]]; then
    [[ -n ${NOBUILD:-} ]] || cargo build --release --bin kvick >&2
    KVICK=$PWD/target/release/kvick
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Writes data set $1 in RESP to stdout; sets KEYS (keys it leaves) and PROBE
# (a key to ask OBJECT ENCODING about).
generate() {
    python3 - "$1" "$HASHES" "$FIELDS" "$MEMBERS" "$ELEMENTS" <<'EOF2'
import sys
name, hashes, fields, members, elements = sys.argv[1], *map(int, sys.argv[2:])
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
if name == "hashes":
    for i in range(hashes):
        args = [b"HSET", b"h:%d" % i]
        for f in range(1, fields + 1):
            args += [b"field%d" % f, b"value-%d" % i]
        cmd(*args)
elif name == "set":
    for i in range(0, members, 1000):
        cmd(b"SADD", b"s", *[b"member:%d" % j for j in range(i, min(i + 1000, members))])
elif name in ("list", "list-holes"):
    holes = name == "list-holes"
    for i in range(0, elements, 1000):
        cmd(b"RPUSH", b"l", *[b"d" if holes and j % 4 else b"element:%d" % j for j in range(i, min(i + 1000, elements))])
    if holes:
        cmd(b"LREM", b"l", b"0", b"d")
EOF2
}

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)/\1/p'; }

printf '%-10s %-6s %12s %12s %12s %12s %10s\n' data server "rss before" "rss after" "used before" "used after" encoding
for d in $DATASETS; do
    generate "$d" >"$OUT/load.resp"
    case $d in
    hashes) keys=$HASHES probe=h:0 ;;
    set) keys=1 probe=s ;;
    *) keys=1 probe=l ;;
    esac
    declare -A ADDED_RSS=() ADDED_USED=()
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
        got=$(redis-cli -p "$port" dbsize)
        [[ $got == "$keys" ]] || { echo "$d: $s holds $got keys, expected $keys" >&2; exit 1; }
        rss1=$(rss_kb "$pid")
        used1=$(used_memory "$port")
        ADDED_RSS[$s]=$(((rss1 - rss0) * 1024))
        ADDED_USED[$s]=$((used1 - used0))
        printf '%-10s %-6s %12s %12s %12s %12s %10s\n' "$d" "$s" "$((rss0 * 1024))" "$((rss1 * 1024))" "$used0" "$used1" \
            "$(redis-cli -p "$port" object encoding "$probe")"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
    python3 -c "print(f'$d: kvick RSS growth / redis RSS growth {${ADDED_RSS[kvick]} / ${ADDED_RSS[redis]}:.2f}, / redis used_memory growth {${ADDED_RSS[kvick]} / ${ADDED_USED[redis]}:.2f}')"
done
