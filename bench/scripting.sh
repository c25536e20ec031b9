#!/usr/bin/env bash
# Issue 4's benchmarks, kvick vs redis-server side by side in one run:
#
# 1. evalsha: EVALSHA of the lock-release script (compare-and-delete) with
#    redis-benchmark; the lock key holds another client's token, so every
#    call runs the GET and the compare and deletes nothing (a steady state).
# 2. multi: MULTI, INCR x3, EXEC (bench/multi_exec.py), on three keys
#    picked with CLUSTER KEYSLOT so that with KVICK_THREADS=2 they live on
#    both of kvick's cores (slots below 8192 are core 0's, the rest core 1's).
#    Every connection increments the same three keys: the transactions queue
#    on their locks, so with several threads each waits for messages between
#    cores (the worst case of cross-core atomicity).
#    multi-own: the same with each connection's own three keys (the same
#    slots, through hash tags): cross-core transactions without contention.
# 3. publish: PUBLISH to a channel with $SUBSCRIBERS subscribers
#    (redis-cli processes on the client CPU; the kernel spreads their
#    connections over kvick's cores) with redis-benchmark.
#
# Servers alternate (A B A B ...) for $ROUNDS rounds, server on CPU 0 (CPUs
# 0,1 for kvick with more threads), clients on CPU 1. For each run the
# server's CPU time (utime+stime, scripts/bench-lib.sh) is sampled before and
# after, giving CPU µs per operation. Medians are printed as a table, also
# saved in $OUT/summary.md with the raw results in $OUT/results.tsv.
#
# Usage (from anywhere):
#   bench/scripting.sh
#   ROUNDS=3 REQUESTS=200000 CONNECTIONS=50 PIPELINE=1 SUBSCRIBERS=10
#   KVICK_THREADS=2 KVICK_ARGS="" REDIS_ARGS="" NOBUILD=1 OUT=DIR
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
CONNECTIONS=${CONNECTIONS:-50}
PIPELINE=${PIPELINE:-1}
SUBSCRIBERS=${SUBSCRIBERS:-10}
KVICK_THREADS=${KVICK_THREADS:-2}
KVICK_ARGS=${KVICK_ARGS:-}
REDIS_ARGS=${REDIS_ARGS:-}
OUT=${OUT:-$(mktemp -d /tmp/kvick-scripting-bench.XXXXXX)}
SERVER_CPUS=0
CLIENT_CPUS=1
KVICK=$PWD/target/release/kvick
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$OUT/results.tsv
SERVERS="kvick redis"
RELEASE='if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end'

mkdir -p "$OUT"
echo "logs and raw results: $OUT"
[[ ${NOBUILD:-0} == 1 ]] || cargo build --release --bin kvick

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

SUB_PIDS=()
stop_subscribers() {
    local p
    for p in "${SUB_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    SUB_PIDS=()
}
trap 'stop_subscribers; cleanup' EXIT

cli() {
    redis-cli -p "$1" "${@:2}"
}

# Three keys for the transaction: two in core 0's half of the slots, one in
# core 1's (the same keys on both servers).
tx_keys() {
    local port=$1 low=() high=() i slot
    for ((i = 0; ${#low[@]} < 2 || ${#high[@]} < 1; i++)); do
        slot=$(cli "$port" CLUSTER KEYSLOT "tx:$i")
        if ((slot < 8192)); then low+=("tx:$i"); else high+=("tx:$i"); fi
    done
    echo "${low[0]} ${high[0]} ${low[1]}"
}

# Runs one test against server $1; prints "ops ops_per_sec".
run_test() {
    local s=$1 t=$2 port=${PORT[$1]} log
    log=$OUT/$t-$s-r$round.txt
    case $t in
    evalsha)
        taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$REQUESTS" \
            -P "$PIPELINE" -q EVALSHA "$SHA" 1 lock my-token >"$log" 2>&1
        ;;
    multi)
        # shellcheck disable=SC2086 # TX_KEYS is a list of words
        taskset -c "$CLIENT_CPUS" python3 bench/multi_exec.py "$port" "$REQUESTS" "$CONNECTIONS" $TX_KEYS >"$log" 2>&1
        ;;
    multi-own)
        # shellcheck disable=SC2086 # TX_KEYS is a list of words
        taskset -c "$CLIENT_CPUS" python3 bench/multi_exec.py "$port" "$REQUESTS" "$CONNECTIONS" --own $TX_KEYS >"$log" 2>&1
        ;;
    publish)
        taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$REQUESTS" \
            -P "$PIPELINE" -q PUBLISH news hello >"$log" 2>&1
        ;;
    esac
    if [[ $t == multi* ]]; then
        sed -n 's/^RESULT ops=\([0-9]*\) .*ops_per_sec=\([0-9.]*\).*/\1 \2/p' "$log"
    else
        # -q still draws progress with carriage returns; keep the summary.
        echo "$REQUESTS $(tr '\r' '\n' <"$log" | sed -n 's/^.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)"
    fi
}

for s in $SERVERS; do
    start_server "$s"
    port=${PORT[$s]}
    SHA=$(cli "$port" SCRIPT LOAD "$RELEASE")
    cli "$port" SET lock another-token >/dev/null
    for ((i = 0; i < SUBSCRIBERS; i++)); do
        taskset -c "$CLIENT_CPUS" redis-cli -p "$port" SUBSCRIBE news >/dev/null 2>&1 &
        SUB_PIDS+=($!)
    done
done
TX_KEYS=$(tx_keys "${PORT[kvick]}")
echo "transaction keys: $TX_KEYS"
# Every subscriber connected before any PUBLISH is measured.
for s in $SERVERS; do
    for ((i = 0; i < 100; i++)); do
        [[ $(cli "${PORT[$s]}" PUBSUB NUMSUB news | tail -1) == "$SUBSCRIBERS" ]] && break
        sleep 0.1
    done
    [[ $(cli "${PORT[$s]}" PUBSUB NUMSUB news | tail -1) == "$SUBSCRIBERS" ]] || die "$s: subscribers missing"
done

printf 'test\tserver\tround\tops_per_sec\tcpu_us_per_op\n' >"$RESULTS"
for ((round = 1; round <= ROUNDS; round++)); do
    for t in evalsha multi multi-own publish; do
        for s in $SERVERS; do
            before=$(cpu_ticks "${PID[$s]}")
            read -r ops ops_per_sec < <(run_test "$s" "$t")
            after=$(cpu_ticks "${PID[$s]}")
            check_alive "$s"
            [[ -n ${ops_per_sec:-} ]] || die "no result from $t against $s: see $OUT/$t-$s-r$round.txt"
            cpu_us=$(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / max($ops, 1):.3f}')")
            printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$s" "$round" "$ops_per_sec" "$cpu_us" >>"$RESULTS"
            echo "round $round $t $s: $ops_per_sec ops/s, $cpu_us CPU µs/op"
        done
    done
done

echo
python3 - "$RESULTS" <<'EOF' | tee "$OUT/summary.md"
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))


def median(test, server, column):
    return statistics.median(float(r[column]) for r in rows if r["test"] == test and r["server"] == server)


print("| test | kvick ops/s | redis ops/s | ops/s kvick/redis | kvick CPU µs/op | redis CPU µs/op | CPU kvick/redis |")
print("|---|---|---|---|---|---|---|")
for test in ("evalsha", "multi", "multi-own", "publish"):
    k, r = median(test, "kvick", "ops_per_sec"), median(test, "redis", "ops_per_sec")
    kc, rc = median(test, "kvick", "cpu_us_per_op"), median(test, "redis", "cpu_us_per_op")
    print(f"| {test} | {k:,.0f} | {r:,.0f} | {k / r:.2f} | {kc:.2f} | {rc:.2f} | {kc / rc if rc else float('nan'):.2f} |")
EOF
