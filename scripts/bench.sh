#!/usr/bin/env bash
# Compare kvick and redis-server on the same workload in one run.
#
# Usage (from anywhere; it works from the repository root):
#   scripts/bench.sh
#   ROUNDS=5 PIPELINES="1 8 32" scripts/bench.sh
#   NOBUILD=1 SERVERS=redis scripts/bench.sh    # loadgen against Redis only
#
# Both servers are started once, each is prefilled with KEYS keys of DATA_SIZE
# bytes (kvick-bench --prefill), and then every round runs, for each pipeline
# depth, kvick-bench against each server in turn (A B A B ...), then
# redis-benchmark against each server in turn, so slow drifts of the shared
# machine hit both servers alike. Servers run on CPU 0, clients on CPU 1, and
# both servers run with persistence off (--save '' --appendonly no).
# For every kvick-bench and redis-benchmark run the server's CPU time (utime+stime from
# /proc/PID/stat) is sampled before and after, giving CPU µs per request.
# The summary is a markdown table of medians over the rounds, also saved as
# $OUT/summary.md next to the raw results ($OUT/results.tsv) and every log.
#
# Environment:
#   ROUNDS=3            rounds (each runs every server once per test)
#   DURATION=10         seconds per kvick-bench run
#   PIPELINES="1 16"    pipeline depths to test
#   CONNECTIONS=50      client connections (kvick-bench and redis-benchmark)
#   RATIO=1:10          kvick-bench SET:GET mix
#   KEYS=1000000        key range: prefilled, and used by both clients (-r)
#   DATA_SIZE=32        value size in bytes (prefill, SETs, redis-benchmark -d)
#   RB_REQUESTS=500000  redis-benchmark -n per test; 0 skips it
#   RB_TESTS=set,get    redis-benchmark -t tests (e.g. hset,sadd); empty runs none
#   RB_COMMANDS=""      arbitrary redis-benchmark commands, ';'-separated, each
#                       run as its own test named by the command's text, e.g.
#                       RB_COMMANDS='XADD mystream * f v;HSET h f:__rand_int__ v'
#                       (words split on spaces, no globbing; -r fills __rand_int__)
#   LG_COMMANDS=""      commands kvick-bench sends instead of its SET/GET mix,
#                       ';'-separated, each its own test of LG_REQUESTS requests
#                       (kvick-bench --command: __rand_int__ is a random number
#                       below KEYS, __data__ a DATA_SIZE-byte value), e.g.
#                       LG_COMMANDS='LPUSH mylist __data__;LPOP mylist'. Costs the
#                       client about half the CPU per request of redis-benchmark,
#                       which on one client core caps what a fast server can show
#   LG_REQUESTS=4000000 requests per LG_COMMANDS test
#   SERVERS="kvick redis"  servers to run, in this order
#   KVICK_THREADS=1     kvick --threads; 1 is pinned to CPU 0 like Redis, more
#                       run on CPUs 0,1 (sharing CPU 1 with the client)
#   KVICK_ARGS=""       extra arguments for kvick
#   KVICK_BIN=target/release/kvick  the kvick binary (e.g. an older build)
#   REDIS_ARGS=""       extra arguments for redis-server
#   NOBUILD=1           skip `cargo build --release --bins`
#   OUT=DIR             keep logs and raw results here (default: a temp dir)
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PIPELINES=${PIPELINES:-"1 16"}
CONNECTIONS=${CONNECTIONS:-50}
RATIO=${RATIO:-1:10}
KEYS=${KEYS:-1000000}
DATA_SIZE=${DATA_SIZE:-32}
RB_REQUESTS=${RB_REQUESTS:-500000}
RB_TESTS=${RB_TESTS-set,get}
RB_COMMANDS=${RB_COMMANDS:-}
LG_COMMANDS=${LG_COMMANDS:-}
LG_REQUESTS=${LG_REQUESTS:-4000000}
SERVERS=${SERVERS:-"kvick redis"}
KVICK_THREADS=${KVICK_THREADS:-1}
KVICK_ARGS=${KVICK_ARGS:-}
REDIS_ARGS=${REDIS_ARGS:-}
OUT=${OUT:-$(mktemp -d /tmp/kvick-bench.XXXXXX)}

SERVER_CPUS=0
CLIENT_CPUS=1
LOADGEN=target/release/kvick-bench
KVICK=${KVICK_BIN:-target/release/kvick}
[[ $KVICK == /* ]] || KVICK=$PWD/$KVICK
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$OUT/results.tsv

mkdir -p "$OUT"
echo "logs and raw results: $OUT"

if [[ ${NOBUILD:-0} != 1 ]]; then
    cargo build --release --bins
fi

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# Value of KEY=... on the line of FILE starting with TAG.
field() {
    sed -n "s/^$2 .*\b$3=\([^ ]*\).*/\1/p" "$1"
}

loadgen() {
    taskset -c "$CLIENT_CPUS" "$LOADGEN" --port "$1" --connections "$CONNECTIONS" \
        --keys "$KEYS" --data-size "$DATA_SIZE" "${@:2}"
}

for s in $SERVERS; do
    start_server "$s"
done

printf 'kind\tserver\tpipeline\tround\tops_per_sec\tp99_us\tcpu_us_per_req\terrors\tclient_cpu_pct\n' >"$RESULTS"

for s in $SERVERS; do
    log=$OUT/prefill-$s.txt
    loadgen "${PORT[$s]}" --prefill --requests 0 >"$log" 2>&1 || {
        cat "$log" >&2
        die "prefill of $s failed"
    }
    check_alive "$s"
    printf 'prefill\t%s\t-\t-\t%s\t-\t-\t%s\t-\n' "$s" "$(field "$log" PREFILL ops_per_sec)" \
        "$(field "$log" PREFILL errors)" >>"$RESULTS"
    echo "$s: prefilled $KEYS keys in $(field "$log" PREFILL secs) s"
done

# One kvick-bench run against server $2 at pipeline $3, recorded as test $1
# ("loadgen" for the SET/GET mix) with the server's CPU µs per request; the
# rest are kvick-bench's arguments. The same seed for both servers of a
# round: identical key streams.
run_loadgen() {
    local kind=$1 s=$2 p=$3 log before after ops ops_per_sec cpu_us
    log=$OUT/${kind//[^A-Za-z0-9_]/_}-$s-p$p-r$round.txt
    before=$(cpu_ticks "${PID[$s]}")
    loadgen "${PORT[$s]}" --pipeline "$p" --seed "$round" "${@:4}" >"$log" 2>&1 || {
        cat "$log" >&2
        check_alive "$s"
        die "kvick-bench ($kind) against $s failed"
    }
    after=$(cpu_ticks "${PID[$s]}")
    ops=$(field "$log" RESULT ops)
    ops_per_sec=$(field "$log" RESULT ops_per_sec)
    cpu_us=$(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / max($ops, 1):.3f}')")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$s" "$p" "$round" "$ops_per_sec" \
        "$(field "$log" RESULT p99_us)" "$cpu_us" "$(field "$log" RESULT errors)" \
        "$(field "$log" RESULT client_cpu_pct)" >>"$RESULTS"
    echo "round $round pipeline $p $s: $kind $ops_per_sec ops/s, $cpu_us CPU µs/req"
}

for ((round = 1; round <= ROUNDS; round++)); do
    for p in $PIPELINES; do
        for s in $SERVERS; do
            run_loadgen loadgen "$s" "$p" --ratio "$RATIO" --duration "$DURATION"
        done
    done
    IFS=';' read -ra lg_commands <<<"$LG_COMMANDS"
    for p in $PIPELINES; do
        for c in "${lg_commands[@]}"; do
            [[ -n ${c// /} ]] || continue
            for s in $SERVERS; do
                run_loadgen "loadgen $c" "$s" "$p" --requests "$LG_REQUESTS" --command "$c"
            done
        done
    done
    ((RB_REQUESTS > 0)) || continue
    for p in $PIPELINES; do
        for s in $SERVERS; do
            # One run per test, so the server's CPU time is that test's. A test is
            # "-t NAME" (named NAME in capitals) or a whole command (named by its text).
            tests=()
            for t in $(tr ',' ' ' <<<"$RB_TESTS"); do tests+=("-t $t"); done
            IFS=';' read -ra commands <<<"$RB_COMMANDS"
            for c in "${commands[@]}"; do [[ -n ${c// /} ]] && tests+=("$c"); done
            for t in "${tests[@]}"; do
                read -ra words <<<"$t"
                if [[ ${words[0]} == -t ]]; then T=${words[1]^^}; else T=${words[*]}; fi
                log=$OUT/redis-benchmark-$s-${T//[^A-Za-z0-9_]/_}-p$p-r$round.txt
                before=$(cpu_ticks "${PID[$s]}")
                taskset -c "$CLIENT_CPUS" redis-benchmark -p "${PORT[$s]}" -c "$CONNECTIONS" \
                    -n "$RB_REQUESTS" -r "$KEYS" -d "$DATA_SIZE" -P "$p" -q "${words[@]}" \
                    >"$log" 2>&1 || echo "warning: redis-benchmark against $s exited non-zero: $log" >&2
                after=$(cpu_ticks "${PID[$s]}")
                check_alive "$s"
                # -q still draws progress with carriage returns; keep the summary, the
                # only line with "requests per second" (one test per run).
                rps=$(tr '\r' '\n' <"$log" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
                [[ -n $rps ]] || {
                    echo "warning: no $T result from redis-benchmark against $s: $log" >&2
                    rps=nan
                }
                cpu_us=$(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / $RB_REQUESTS:.3f}')")
                printf 'redis-benchmark %s\t%s\t%s\t%s\t%s\t-\t%s\t-\t-\n' "$T" "$s" "$p" "$round" \
                    "$rps" "$cpu_us" >>"$RESULTS"
                echo "round $round pipeline $p $s: redis-benchmark $T $rps req/s, $cpu_us CPU µs/req"
            done
        done
    done
done

echo
python3 - "$RESULTS" "$SERVERS" "$PIPELINES" <<'EOF' | tee "$OUT/summary.md"
import csv
import math
import statistics
import sys

path, servers, pipelines = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
rows = list(csv.DictReader(open(path), delimiter="\t"))


def median(kind, server, pipeline, column):
    values = [float(r[column]) for r in rows
              if r["kind"] == kind and r["server"] == server and r["pipeline"] == pipeline]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}"


compare = "kvick" in servers and "redis" in servers


def table(header, lines):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print()


# (column, heading, scale, decimals, whether to add a kvick/redis ratio)
metrics = [("ops_per_sec", "ops/s", 1, 0, True),
           ("p99_us", "p99 ms", 1e-3, 3, False),
           ("cpu_us_per_req", "CPU µs/req", 1, 2, True)]
header = ["pipeline"]
for _, heading, _, _, with_ratio in metrics:
    header += [f"{s} {heading}" for s in servers]
    if compare and with_ratio:
        header.append(f"{heading} kvick/redis")
lines = []
for p in pipelines:
    line = [p]
    for column, _, scale, digits, with_ratio in metrics:
        values = {s: median("loadgen", s, p, column) for s in servers}
        line += [fmt(None if values[s] is None else values[s] * scale, digits) for s in servers]
        if compare and with_ratio:
            line.append(ratio(values["kvick"], values["redis"]))
    lines.append(line)
print("kvick-bench (medians over rounds):")
print()
table(header, lines)

def per_test_table(title, first, kinds, rate, client_cpu):
    """One row per pipeline and test: rate and CPU per request of each server
    (and kvick/redis), then, if asked, the client's CPU % against each."""
    if not kinds:
        return
    header = ["pipeline", first]
    for heading in (rate, "CPU µs/req"):
        header += [f"{s} {heading}" for s in servers]
        if compare:
            header.append(f"{heading} kvick/redis")
    if client_cpu:
        header += [f"client CPU % ({s})" for s in servers]
    lines = []
    for p in pipelines:
        for kind in kinds:
            line = [p, kind.split(maxsplit=1)[1]]
            for column, digits in (("ops_per_sec", 0), ("cpu_us_per_req", 2)):
                line += [fmt(median(kind, s, p, column), digits) for s in servers]
                if compare:
                    line.append(ratio(median(kind, "kvick", p, column), median(kind, "redis", p, column)))
            if client_cpu:
                line += [fmt(median(kind, s, p, "client_cpu_pct")) for s in servers]
            lines.append(line)
    print(f"{title} (medians over rounds):")
    print()
    table(header, lines)


per_test_table("kvick-bench --command", "command",
               [k for k in dict.fromkeys(r["kind"] for r in rows) if k.startswith("loadgen ")],
               "ops/s", True)
per_test_table("redis-benchmark", "test",
               sorted({r["kind"] for r in rows if r["kind"].startswith("redis-benchmark")}, reverse=True),
               "req/s", False)

prefill = {r["server"]: r["ops_per_sec"] for r in rows if r["kind"] == "prefill"}
print("prefill SET/s: " + ", ".join(f"{s} {fmt(float(v))}" for s, v in prefill.items()))
errors = sum(int(r["errors"]) for r in rows if r["errors"] not in ("-", ""))
if errors:
    print(f"WARNING: {errors} error replies in total (see {path})")
busy = [r for r in rows if r["client_cpu_pct"] not in ("-", "") and float(r["client_cpu_pct"]) >= 95]
if busy:
    print(f"WARNING: the client used >= 95% of its core in {len(busy)} run(s): "
          "those numbers may be client-bound")
EOF
