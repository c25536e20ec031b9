#!/usr/bin/env bash
# Sorted sets, kvick vs redis-server, side by side:
#
# 1. ZADD throughput at pipeline $PIPELINE (redis-benchmark, $CONNECTIONS
#    connections): "one key" adds random members to a single set (one core
#    serves it), "many keys" adds to $KEYS random sets. Servers alternate
#    (A B A B ...) for $ROUNDS rounds on CPU 0, the client runs on CPU 1;
#    medians are reported, with the server's CPU time per request
#    (utime+stime from /proc/PID/stat): on a busy machine the client, not the
#    server, often sets the ops/s, and CPU per request still compares them.
# 2. Memory of one sorted set of $MEMBERS members ("member:0".., score = i,
#    loaded by bench/zset_fill.py): growth of RSS (/proc/PID/status VmRSS)
#    and of INFO used_memory over an empty server. (kvick's used_memory is its
#    RSS; Redis' is its allocator's count.)
#
# Usage (from anywhere): bench/zset.sh
#   ROUNDS=3 REQUESTS=2000000 PIPELINE=16 CONNECTIONS=50 KEYS=10000 MEMBERS=1000000
#   KVICK_THREADS=1 NOBUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-2000000}
PIPELINE=${PIPELINE:-16}
CONNECTIONS=${CONNECTIONS:-50}
KEYS=${KEYS:-10000}
MEMBERS=${MEMBERS:-1000000}
KVICK_THREADS=${KVICK_THREADS:-1}
KVICK=$PWD/target/release/kvick
OUT=$(mktemp -d /tmp/kvick-zset-bench.XXXXXX)
[[ -n ${NOBUILD:-} ]] || cargo build --release --bin kvick >/dev/null

declare -A PORT=([kvick]=7711 [redis]=7712)
declare -A SPID
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts server $1 and sets SERVER_PID.
start() {
    local port=${PORT[$1]}
    case $1 in
    kvick) (cd "$OUT" && exec taskset -c 0 "$KVICK" --port "$port" --threads "$KVICK_THREADS") >"$OUT/$1.log" 2>&1 & ;;
    redis) (cd "$OUT" && exec taskset -c 0 redis-server --port "$port" --save '' --appendonly no) >"$OUT/$1.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    SPID[$1]=$SERVER_PID
    PIDS+=("$SERVER_PID")
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
    echo "$1 did not start" >&2
    exit 1
}

stop() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}'; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# "ops/s CPU-µs-per-request" of one redis-benchmark run against server $1
# ($2...: the command).
rps() {
    local s=$1 before after ops
    shift
    before=$(cpu_ticks "${SPID[$s]}")
    ops=$(taskset -c 1 redis-benchmark -p "${PORT[$s]}" -c "$CONNECTIONS" -P "$PIPELINE" -n "$REQUESTS" -r 1000000 --csv "$@" |
        tail -1 | cut -d, -f2 | tr -d '"')
    after=$(cpu_ticks "${SPID[$s]}")
    echo "$ops $(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $REQUESTS" | bc -l)"
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "== ZADD throughput, pipeline $PIPELINE, $CONNECTIONS connections, $ROUNDS rounds, kvick --threads $KVICK_THREADS"
for s in kvick redis; do start "$s"; done
for round in $(seq "$ROUNDS"); do
    for s in kvick redis; do
        redis-cli -p "${PORT[$s]}" flushall >/dev/null
        echo "$s one-key $(rps "$s" ZADD myzset __rand_int__ member:__rand_int__)" >>"$OUT/rps.txt"
        echo "$s many-keys $(rps "$s" ZADD "zset:{__rand_int__}" __rand_int__ member:__rand_int__)" >>"$OUT/rps.txt"
    done
done
cleanup
PIDS=()
for test in one-key many-keys; do
    k=$(awk -v t=$test '$1 == "kvick" && $2 == t {print $3}' "$OUT/rps.txt" | median)
    r=$(awk -v t=$test '$1 == "redis" && $2 == t {print $3}' "$OUT/rps.txt" | median)
    kc=$(awk -v t=$test '$1 == "kvick" && $2 == t {print $4}' "$OUT/rps.txt" | median)
    rc=$(awk -v t=$test '$1 == "redis" && $2 == t {print $4}' "$OUT/rps.txt" | median)
    printf '%-10s kvick %8.0f ops/s %5.2f CPU-us/req   redis %8.0f ops/s %5.2f CPU-us/req   ratio %.2f (ops/s), %.2f (redis CPU/kvick CPU)\n' \
        "$test" "$k" "$kc" "$r" "$rc" "$(echo "$k / $r" | bc -l)" "$(echo "$rc / $kc" | bc -l)"
done

echo "== Memory of one sorted set of $MEMBERS members"
for s in kvick redis; do
    start "$s"
    pid=$SERVER_PID port=${PORT[$s]}
    rss0=$(rss_kb "$pid") used0=$(used_memory "$port")
    python3 bench/zset_fill.py "$port" z "$MEMBERS"
    sleep 1
    rss1=$(rss_kb "$pid") used1=$(used_memory "$port")
    echo "$s $(((rss1 - rss0) * 1024)) $((used1 - used0)) $(redis-cli -p "$port" object encoding z)" >>"$OUT/mem.txt"
    stop "$pid"
done
read -r _ krss kused kenc < <(grep '^kvick' "$OUT/mem.txt")
read -r _ rrss rused renc < <(grep '^redis' "$OUT/mem.txt")
printf '%-12s kvick %6.1f bytes/member   redis %6.1f bytes/member   ratio %.2f\n' \
    RSS "$(echo "$krss / $MEMBERS" | bc -l)" "$(echo "$rrss / $MEMBERS" | bc -l)" "$(echo "$krss / $rrss" | bc -l)"
printf '%-12s kvick %6.1f bytes/member   redis %6.1f bytes/member   ratio %.2f\n' \
    used_memory "$(echo "$kused / $MEMBERS" | bc -l)" "$(echo "$rused / $MEMBERS" | bc -l)" "$(echo "$kused / $rused" | bc -l)"
echo "encodings: kvick $kenc, redis $renc; raw results in $OUT"
