# Helpers shared by the benchmark scripts (scripts/bench.sh,
# bench/persistence.sh); sourced, not run. They expect the caller to set
# OUT (logs go to $OUT/NAME.log) and to keep server pids in the associative
# array PID, by name.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    # Fields 14 and 15; the command name (field 2) may hold spaces, so count
    # from after its closing parenthesis, where field 3 is the first.
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
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
