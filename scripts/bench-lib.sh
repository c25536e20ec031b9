# Shared by the benchmark scripts (sourced, not run): starting kvick and
# redis-server pinned to their CPUs, and sampling a server's CPU time.
#
# The sourcing script sets OUT (logs go there), KVICK (the binary),
# KVICK_THREADS, KVICK_ARGS, REDIS_ARGS, SERVER_CPUS; `start_server NAME`
# then fills PID[NAME] and PORT[NAME], and the EXIT trap stops the servers.
# A script with other needs (bench/persistence.sh) redefines start_server
# and cleanup after sourcing this.

declare -A PID PORT

cleanup() {
    local s
    for s in "${!PID[@]}"; do
        kill "${PID[$s]}" 2>/dev/null || true
        wait "${PID[$s]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of a process (all its threads) and of its children waited
# for (Redis' BGSAVE and AOF rewrite forks), in clock ticks.
cpu_ticks() {
    # Fields 14 to 17; the command name (field 2) may hold spaces, so count
    # from after its closing parenthesis, where field 3 is the first.
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

check_alive() {
    kill -0 "${PID[$1]}" 2>/dev/null || {
        tail -20 "$OUT/$1.log" >&2 || true
        die "$1 (pid ${PID[$1]}) died; log: $OUT/$1.log"
    }
}

start_server() {
    local s=$1 port
    port=$(free_port)
    case $s in
    kvick)
        [[ -x $KVICK ]] || die "$KVICK not built"
        local cpus=$SERVER_CPUS
        ((KVICK_THREADS > 1)) && cpus=0,1
        # Persistence off, as for Redis: a snapshot mid-run would skew the numbers.
        # Both run in $OUT so nothing they write lands in the work tree.
        # shellcheck disable=SC2086 # KVICK_ARGS is a list of words
        (cd "$OUT" && exec taskset -c "$cpus" "$KVICK" --port "$port" --threads "$KVICK_THREADS" \
            --save '' --appendonly no $KVICK_ARGS) >"$OUT/kvick.log" 2>&1 &
        ;;
    redis)
        # shellcheck disable=SC2086 # REDIS_ARGS is a list of words
        (cd "$OUT" && exec taskset -c "$SERVER_CPUS" redis-server --port "$port" \
            --save '' --appendonly no --daemonize no $REDIS_ARGS) >"$OUT/redis.log" 2>&1 &
        ;;
    *) die "unknown server '$s' (want kvick or redis)" ;;
    esac
    # The subshell execs taskset, which execs the server: this is the server's pid.
    PID[$s]=$!
    PORT[$s]=$port
    wait_port "$s" "$port"
    echo "$s: pid ${PID[$s]}, port $port"
}

# Waits until server NAME (pid in PID[NAME]) accepts connections on PORT;
# gives up after TRIES tenths of a second (default 100).
wait_port() {
    local s=$1 port=$2 tries=${3:-100} i
    for ((i = 0; i < tries; i++)); do
        check_alive "$s"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    die "$s did not accept connections on port $port"
}
