#!/usr/bin/env bash
# Persistence, kvick against redis-server configured the same, in one run.
#
# Usage (from anywhere):
#   bench/persistence.sh
#   SIZE_MB=20 DURATION=2 ROUNDS=1 bench/persistence.sh      # a smoke test
#
# (a) Throughput of a SET load (kvick-bench, SET only, CONNECTIONS
#     connections, each depth of PIPELINES) with appendonly yes and
#     appendfsync always, then everysec. Each policy starts both servers in
#     fresh directories; every round runs each server in turn (A B A B ...).
# (b) A dataset of SIZE_MB (keys of VALUE_SIZE bytes; 2 GB is about 20M keys
#     of 100 B) is loaded, then BGSAVE runs under a SET load (SAVE_LOAD_CONN
#     connections, pipeline 1, over the same keys). The server's VmRSS is
#     sampled every 50 ms until the save is done, plus the Private_Dirty of
#     its children (Redis' fork: what copy-on-write has duplicated so far).
#     Reported: peak / before the save.
# (c) The server is stopped (SHUTDOWN NOSAVE: the BGSAVE's files remain) and
#     started again in the same directory; reported: the time until it
#     answers PING and DBSIZE shows the whole dataset.
# Rounds alternate the servers in (b) and (c) too. Servers run on CPU 0
# (kvick with KVICK_THREADS > 1 on CPUs 0,1), clients on CPU 1. The summary
# is a markdown table of medians and kvick/redis ratios, also saved as
# $OUT/summary.md beside the raw results ($OUT/results.tsv) and the logs.
#
# Environment:
#   ROUNDS=3            rounds of each part
#   DURATION=10         seconds per throughput run
#   PIPELINES="1 16"    pipeline depths of (a)
#   CONNECTIONS=50      connections of (a)
#   TP_KEYS=1000000     key range of (a)
#   SIZE_MB=2048        dataset of (b) and (c), in MB of values
#   VALUE_SIZE=100      value size in bytes, (a) (b) and (c)
#   SAVE_LOAD_CONN=10   connections of the write load during BGSAVE
#   PARTS="a b"         parts to run ("b" includes (c))
#   KVICK_THREADS=1     kvick --threads
#   KVICK_ARGS=""       extra arguments for kvick
#   REDIS_ARGS=""       extra arguments for redis-server
#   FSYNC_MODEL_US=N    part (a) on a model disk: data in /dev/shm, and every
#                       fsync/fdatasync of both servers takes N µs first
#                       (bench/fsync_model.c, LD_PRELOAD): the shared disk's
#                       noise goes, what stays is how writes group per fsync
#   NOBUILD=1           skip `cargo build --release --bins`
#   OUT=DIR             logs, data directories and results (default: a temp dir)
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PIPELINES=${PIPELINES:-"1 16"}
CONNECTIONS=${CONNECTIONS:-50}
TP_KEYS=${TP_KEYS:-1000000}
SIZE_MB=${SIZE_MB:-2048}
VALUE_SIZE=${VALUE_SIZE:-100}
SAVE_LOAD_CONN=${SAVE_LOAD_CONN:-10}
PARTS=${PARTS:-"a b"}
KVICK_THREADS=${KVICK_THREADS:-1}
KVICK_ARGS=${KVICK_ARGS:-}
REDIS_ARGS=${REDIS_ARGS:-}
OUT=${OUT:-$(mktemp -d /tmp/kvick-persistence.XXXXXX)}

SERVERS="kvick redis"
SERVER_CPUS=0
CLIENT_CPUS=1
LOADGEN=$PWD/target/release/kvick-bench
KVICK=$PWD/target/release/kvick
RESULTS=$OUT/results.tsv
CLK_TCK=$(getconf CLK_TCK)
DATA_KEYS=$((SIZE_MB * 1000000 / VALUE_SIZE))

mkdir -p "$OUT"
echo "logs, data and raw results: $OUT"

if [[ ${NOBUILD:-0} != 1 ]]; then
    cargo build --release --bins
fi

# Part (a)'s data directories, and the environment its servers start in.
A_DIR=$OUT
A_ENV=()
if [[ -n ${FSYNC_MODEL_US:-} ]]; then
    A_DIR=$(mktemp -d /dev/shm/kvick-persistence.XXXXXX)
    gcc -O2 -shared -fPIC -o "$OUT/fsync_model.so" bench/fsync_model.c -ldl
    A_ENV=(env LD_PRELOAD="$OUT/fsync_model.so" FSYNC_MODEL_US="$FSYNC_MODEL_US")
fi

declare -A PID PORT
# Prefix of the servers' command (env ... for part (a) on the model disk).
START_ENV=()
LOAD_PID=

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

stop() {
    local s=$1
    [[ -n ${PID[$s]:-} ]] || return 0
    kill "${PID[$s]}" 2>/dev/null || true
    wait "${PID[$s]}" 2>/dev/null || true
    unset "PID[$s]"
}

cleanup() {
    [[ -z $LOAD_PID ]] || kill "$LOAD_PID" 2>/dev/null || true
    local s
    for s in "${!PID[@]}"; do
        stop "$s"
    done
    [[ $A_DIR != /dev/shm/* ]] || rm -rf "$A_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME DIR ARGS...: starts NAME with its data in DIR and the
# given persistence arguments (the same words for both servers).
start_server() {
    local s=$1 dir=$2 port
    shift 2
    port=$(free_port)
    mkdir -p "$dir"
    case $s in
    kvick)
        local cpus=$SERVER_CPUS
        ((KVICK_THREADS > 1)) && cpus=0,1
        # shellcheck disable=SC2086 # KVICK_ARGS is a list of words
        (cd "$dir" && exec "${START_ENV[@]}" taskset -c "$cpus" "$KVICK" --port "$port" --threads "$KVICK_THREADS" \
            --dir "$dir" "$@" $KVICK_ARGS) >>"$OUT/$s.log" 2>&1 &
        ;;
    redis)
        # shellcheck disable=SC2086 # REDIS_ARGS is a list of words
        (cd "$dir" && exec "${START_ENV[@]}" taskset -c "$SERVER_CPUS" redis-server --port "$port" --daemonize no \
            --dir "$dir" "$@" $REDIS_ARGS) >>"$OUT/$s.log" 2>&1 &
        ;;
    esac
    PID[$s]=$!
    PORT[$s]=$port
    # A server loading a large dataset may take long to listen (kvick
    # listens once loaded): wait up to an hour.
    wait_port "$s" "$port" 36000
}

cli() {
    redis-cli -p "${PORT[$1]}" "${@:2}"
}

# A field of INFO persistence.
info() {
    cli "$1" info persistence | tr -d '\r' | sed -n "s/^$2:\(.*\)/\1/p"
}

loadgen() {
    taskset -c "$CLIENT_CPUS" "$LOADGEN" --port "${PORT[$1]}" --data-size "$VALUE_SIZE" "${@:2}"
}

# Value of KEY=... on the line of FILE starting with TAG.
field() {
    sed -n "s/^$2 .*\b$3=\([^ ]*\).*/\1/p" "$1"
}

printf 'kind\tserver\tsetting\tround\tvalue\n' >"$RESULTS"
result() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# ---- (a) throughput with appendfsync always, then everysec -----------------

part_a() {
    local fsync round p s log before after
    START_ENV=("${A_ENV[@]}")
    for fsync in always everysec; do
        for s in $SERVERS; do
            start_server "$s" "$A_DIR/data-a-$fsync-$s" --save '' --appendonly yes --appendfsync "$fsync"
        done
        for ((round = 1; round <= ROUNDS; round++)); do
            for p in $PIPELINES; do
                for s in $SERVERS; do
                    log=$OUT/a-$fsync-$s-p$p-r$round.txt
                    before=$(cpu_ticks "${PID[$s]}")
                    loadgen "$s" --connections "$CONNECTIONS" --keys "$TP_KEYS" --ratio 1:0 \
                        --pipeline "$p" --duration "$DURATION" --seed "$round" >"$log" 2>&1 || {
                        cat "$log" >&2
                        check_alive "$s"
                        die "kvick-bench against $s failed"
                    }
                    after=$(cpu_ticks "${PID[$s]}")
                    result "set $fsync" "$s" "$p" "$round" "$(field "$log" RESULT ops_per_sec)"
                    result "set $fsync CPU us/op" "$s" "$p" "$round" \
                        "$(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / max($(field "$log" RESULT ops), 1):.2f}')")"
                    echo "(a) $fsync pipeline $p round $round $s: $(field "$log" RESULT ops_per_sec) SET/s"
                done
            done
        done
        for s in $SERVERS; do
            stop "$s"
            rm -rf "$A_DIR/data-a-$fsync-$s"
        done
    done
    START_ENV=()
}

# ---- (b) RSS during BGSAVE under writes, (c) restart time -------------------

# Samples the server's memory every 50 ms from BGSAVE until the save is
# done; prints "before peak" in kB.
sample_bgsave() {
    python3 - "${PID[$1]}" "${PORT[$1]}" <<'EOF'
import socket
import sys
import time

pid, port = int(sys.argv[1]), int(sys.argv[2])


def kb(path, field):
    try:
        for line in open(path):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass  # a child that just exited
    return 0


def children(p):
    out = []
    try:
        for task in open(f"/proc/{p}/task/{p}/children").read().split():
            out.append(int(task))
    except OSError:
        pass
    return out


def memory():
    # The server's resident set, plus what its children (a fork) have
    # privately dirtied: the memory the save adds.
    return kb(f"/proc/{pid}/status", "VmRSS") + sum(kb(f"/proc/{c}/smaps_rollup", "Private_Dirty") for c in children(pid))


def command(*args):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    data = b""
    while b"\r\n" not in data:
        data += s.recv(1 << 16)
    if data.startswith(b"$"):
        head = data.index(b"\r\n")
        need = head + 2 + int(data[1:head]) + 2
        while len(data) < need:
            data += s.recv(1 << 16)
        data = data[head + 2:need - 2]
    s.close()
    return data.decode()


def saves():
    info = command(b"INFO", b"persistence")
    fields = dict(l.split(":", 1) for l in info.splitlines() if ":" in l)
    return int(fields["rdb_saves"]), fields["rdb_bgsave_in_progress"] == "1"


before = memory()
done_before = saves()[0]
reply = command(b"BGSAVE")
if not reply.startswith("+"):
    sys.exit(f"BGSAVE: {reply.strip()}")
peak = before
while True:
    peak = max(peak, memory())
    n, running = saves()
    if n > done_before and not running:
        break
    time.sleep(0.05)
print(before, peak)
EOF
}

part_b() {
    local round s dir log before peak t0 t1 n
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in $SERVERS; do
            dir=$OUT/data-b-$s
            rm -rf "$dir"
            start_server "$s" "$dir" --save '' --appendonly no
            log=$OUT/b-prefill-$s-r$round.txt
            loadgen "$s" --connections 50 --keys "$DATA_KEYS" --prefill --requests 0 >"$log" 2>&1 || {
                cat "$log" >&2
                die "prefill of $s failed"
            }
            n=$(cli "$s" dbsize)
            echo "(b) round $round $s: $n keys loaded"
            # The write load runs until the save is done.
            loadgen "$s" --connections "$SAVE_LOAD_CONN" --keys "$DATA_KEYS" --ratio 1:0 \
                --duration 36000 --seed "$round" >"$OUT/b-load-$s-r$round.txt" 2>&1 &
            LOAD_PID=$!
            sleep 1
            read -r before peak < <(sample_bgsave "$s") || die "BGSAVE sampling of $s failed"
            kill "$LOAD_PID" 2>/dev/null || true
            wait "$LOAD_PID" 2>/dev/null || true
            LOAD_PID=
            check_alive "$s"
            result "bgsave rss before MB" "$s" - "$round" "$((before / 1024))"
            result "bgsave rss peak MB" "$s" - "$round" "$((peak / 1024))"
            result "bgsave peak/before" "$s" - "$round" "$(python3 -c "print(f'{$peak / $before:.3f}')")"
            echo "(b) round $round $s: RSS before $((before / 1024)) MB, peak $((peak / 1024)) MB"
            n=$(cli "$s" dbsize)
            cli "$s" shutdown nosave >/dev/null 2>&1 || true
            wait "${PID[$s]}" 2>/dev/null || true
            unset "PID[$s]"
            # (c) Until PING answers (kvick listens once loaded; Redis
            # answers -LOADING meanwhile) and the dataset is there.
            t0=$(date +%s.%N)
            start_server "$s" "$dir" --save '' --appendonly no
            until [[ $(cli "$s" ping 2>/dev/null) == PONG ]]; do
                check_alive "$s"
                sleep 0.01
            done
            t1=$(date +%s.%N)
            [[ $(cli "$s" dbsize) == "$n" ]] || die "$s restarted with $(cli "$s" dbsize) keys, not $n"
            result "load secs" "$s" - "$round" "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
            echo "(c) round $round $s: $n keys loaded in $(python3 -c "print(f'{$t1 - $t0:.3f}')") s"
            stop "$s"
            rm -rf "$dir"
        done
    done
}

for part in $PARTS; do
    case $part in
    a) part_a ;;
    b) part_b ;;
    *) die "unknown part '$part' (want a or b)" ;;
    esac
done

echo
python3 - "$RESULTS" <<'EOF' | tee "$OUT/summary.md"
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))


def median(kind, server, setting):
    v = [float(r["value"]) for r in rows if r["kind"] == kind and r["server"] == server and r["setting"] == setting]
    return statistics.median(v) if v else None


def fmt(v, digits):
    return "n/a" if v is None else f"{v:,.{digits}f}"


print("| measure | setting | kvick | redis | kvick/redis |")
print("|---|---|---|---|---|")
seen = []
for r in rows:
    if (r["kind"], r["setting"]) not in seen:
        seen.append((r["kind"], r["setting"]))
for kind, setting in seen:
    k, rd = median(kind, "kvick", setting), median(kind, "redis", setting)
    digits = 2 if kind.endswith("us/op") else 0 if kind.startswith("set") or kind.endswith("MB") else 3
    ratio = "n/a" if k is None or not rd else f"{k / rd:.2f}"
    label = {"-": ""}.get(setting, f"pipeline {setting}")
    print(f"| {kind} | {label} | {fmt(k, digits)} | {fmt(rd, digits)} | {ratio} |")
print()
print("Medians over rounds. 'set always/everysec': SET/s with appendonly yes (CPU us/op: the "
      "server's utime+stime per SET); "
      "'bgsave peak/before': peak memory during BGSAVE under writes over memory before it "
      "(Redis: parent RSS + the fork's Private_Dirty); 'load secs': restart until PING and DBSIZE.")
EOF
