#!/usr/bin/env bash
# Runs redis-py's own test suite (tests/ of its PyPI sdist), the part listed
# in tests/redis-py/selected.txt, against kvick: once with RESP2, once with
# RESP3. Exits non-zero if any selected test fails, errors, is skipped or
# xfails (then it did not really run), or if nothing was selected.
#
# Usage (from anywhere): scripts/redis-py-tests.sh [extra pytest arguments]
#
# Needs what scripts/setup.sh installs: python3 with pip, pytest,
# pytest-asyncio, pytest-timeout. The sdist is downloaded once with pip and
# kept, unpacked, under target/redis-py/. The kvick binary is
# target/release/kvick, brought up to date with `cargo build --release`
# (a no-op when scripts/test.sh has just built it).
#
# Environment:
#   KVICK_THREADS=2      kvick --threads
#   PROTOCOLS="2 3"      RESP versions to run the selection with
#   REDIS_PY_SELECTION=FILE  another selection file (default: tests/redis-py/selected.txt)
#   SERVER=redis         run the selection against redis-server instead (the
#                        oracle: every selected test must pass there too)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REDIS_PY_VERSION=5.0.8
# sha256 of redis-5.0.8.tar.gz on PyPI.
REDIS_PY_SHA256=0c5b10d387568dfe0698c6fad6615750c24170e548ca2deac10c649d463e9870
KVICK_THREADS=${KVICK_THREADS:-2}
PROTOCOLS=${PROTOCOLS:-"2 3"}
SERVER=${SERVER:-kvick}
SELECTION=${REDIS_PY_SELECTION:-$ROOT/tests/redis-py/selected.txt}
WORK=$ROOT/target/redis-py
SRC=$WORK/redis-$REDIS_PY_VERSION
KVICK=$ROOT/target/release/kvick

log() { printf '[redis-py] %s\n' "$*"; }
die() { printf '[redis-py] FAILED: %s\n' "$*" >&2; exit 1; }

[[ $SERVER == kvick || $SERVER == redis ]] || { echo "SERVER must be kvick or redis" >&2; exit 2; }
echo "==> redis-py $REDIS_PY_VERSION test suite against $SERVER"

# --- The selection: node ids, one a line; '#' comments, blank lines.
mapfile -t TESTS < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' "$SELECTION" | grep -v '^$' || true)
((${#TESTS[@]} > 0)) || die "no tests selected in $SELECTION"
log "${#TESTS[@]} node ids selected in ${SELECTION#"$ROOT"/}"

# --- The sdist, fetched once. The marker file is written last, so an
# interrupted download or unpack is redone next time.
if [[ ! -e $SRC/.unpacked ]]; then
    log "downloading redis==$REDIS_PY_VERSION sdist with pip"
    rm -rf "$WORK/dl" "$SRC"
    mkdir -p "$WORK/dl"
    python3 -m pip download --quiet --disable-pip-version-check \
        --no-binary :all: --no-deps --dest "$WORK/dl" "redis==$REDIS_PY_VERSION"
    tarball=$WORK/dl/redis-$REDIS_PY_VERSION.tar.gz
    echo "$REDIS_PY_SHA256  $tarball" | sha256sum --check --quiet - ||
        die "checksum mismatch for $tarball"
    tar -xzf "$tarball" -C "$WORK"
    [[ -e $SRC/tests/conftest.py ]] || die "no tests/conftest.py in $tarball"
    touch "$SRC/.unpacked"
fi

# --- The server binary.
if [[ $SERVER == kvick ]]; then
    log "cargo build --release"
    cargo build --release --quiet --bin kvick
    [[ -x $KVICK ]] || die "no $KVICK after cargo build"
fi

# --- A free port. kvick binds with SO_REUSEPORT, so a port that something
# else listens on would be shared silently; as in tests/common/mod.rs: hold a
# lock file for the port (the same files, so concurrent cargo tests never
# pick it), check bind() without SO_REUSEPORT and that connect() is refused.
# Ports come from below the kernel's ephemeral range.
read -r eph_low _ < /proc/sys/net/ipv4/ip_local_port_range || eph_low=0
if ((eph_low >= 22000)); then port_hi=$eph_low; else port_hi=60000; fi
lock_dir=${TMPDIR:-/tmp}/kvick-test-ports
mkdir -p "$lock_dir"
PORT=
for _ in $(seq 1000); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % (port_hi - 20000)))
    exec {lock_fd}>"$lock_dir/$p.lock"
    if flock --nonblock "$lock_fd" && python3 - "$p" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket()
try:
    s.bind(("127.0.0.1", port))
except OSError:
    sys.exit(1)
s.close()
c = socket.socket()
c.settimeout(0.2)
sys.exit(0 if c.connect_ex(("127.0.0.1", port)) != 0 else 1)
PY
    then
        PORT=$p
        break # the lock stays held until this script exits
    fi
    exec {lock_fd}>&-
done
[[ -n $PORT ]] || die "no free port found"

# --- The server.
SERVER_LOG=$WORK/$SERVER.log
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ $SERVER == kvick ]]; then
    "$KVICK" --port "$PORT" --bind 127.0.0.1 --threads "$KVICK_THREADS" \
        --save '' --dir "$WORK" --enable-debug-command yes >"$SERVER_LOG" 2>&1 &
else
    (cd "$WORK" && exec redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --enable-debug-command yes) >"$SERVER_LOG" 2>&1 &
fi
SERVER_PID=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "$SERVER exited at startup"; }
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || die "$SERVER does not accept connections on port $PORT"
log "$SERVER pid $SERVER_PID, port $PORT$([[ $SERVER == kvick ]] && echo ", --threads $KVICK_THREADS")"

# --- The runs. The suite's conftest takes the server from --redis-url (and
# uses database 9); the async tests need asyncio_mode=auto, which the
# sdist's missing pytest.ini would have set.
status=0
summaries=()
for proto in $PROTOCOLS; do
    echo "==> redis-py tests, RESP$proto"
    out=$WORK/pytest-resp$proto.log
    set +e
    (cd "$SRC" && python3 -m pytest -p no:cacheprovider --timeout 60 \
        -o asyncio_mode=auto -o asyncio_default_fixture_loop_scope=function \
        -W ignore::pytest.PytestUnknownMarkWarning \
        --redis-url "redis://127.0.0.1:$PORT/9" --protocol "$proto" \
        -q -rfEsxX "$@" "${TESTS[@]}") 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran' "$out" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
    summaries+=("RESP$proto: ${summary:-no summary}")
    if ((rc != 0)); then
        log "RESP$proto: pytest exited with $rc"
        status=1
    elif ! [[ $summary =~ ^[0-9]+\ passed ]]; then
        log "RESP$proto: nothing passed"
        status=1
    elif [[ $summary =~ skipped|xfailed|xpassed|deselected ]]; then
        log "RESP$proto: every selected test must run and pass (see the skips/xfails above)"
        status=1
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$SERVER died; its log:"
        cat "$SERVER_LOG" >&2
        status=1
        break
    fi
done

for s in "${summaries[@]}"; do log "$s"; done
((status == 0)) || die "redis-py tests failed ($SERVER log: ${SERVER_LOG#"$ROOT"/})"
log "all passed"
