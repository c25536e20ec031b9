#!/usr/bin/env bash
# Installs everything the test suite needs on a Debian 12 machine, as root.
# Idempotent: every step checks first, so a machine that is already set up
# makes no network requests and this finishes in well under a second.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

# --- Debian packages: redis-server (the oracle for the differential tests)
# and redis-tools (redis-cli, used by the smoke tests).
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    log "redis-server and redis-cli present: $(redis-server --version | cut -d' ' -f3)"
else
    log "installing redis-server redis-tools with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server redis-tools
    # The package may start its own service on port 6379. The tests start
    # their own servers on random ports and never use it, so stop it and keep
    # it from starting at boot; failures just mean there is no init system.
    service redis-server stop >/dev/null 2>&1 || true
    update-rc.d redis-server disable >/dev/null 2>&1 || true
    systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

# --- Python packages, for Python-based client tests.
PY_PKGS=(redis==5.0.8 pytest pytest-asyncio pytest-timeout)
if python3 - <<'PY' 2>/dev/null
import redis, pytest, pytest_asyncio, pytest_timeout
assert redis.__version__ == "5.0.8"
PY
then
    log "python packages present"
else
    if ! python3 -m pip --version >/dev/null 2>&1; then
        log "installing python3-pip with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3-pip
    fi
    pip_flags=(--quiet --disable-pip-version-check --root-user-action=ignore)
    # Debian's own python refuses pip installs (PEP 668) unless told otherwise;
    # a pyenv or venv python has no EXTERNALLY-MANAGED marker and needs no flag.
    stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
    if [[ -e "$stdlib/EXTERNALLY-MANAGED" ]]; then
        pip_flags+=(--break-system-packages)
    fi
    log "installing python packages: ${PY_PKGS[*]}"
    python3 -m pip install "${pip_flags[@]}" "${PY_PKGS[@]}"
fi

# --- Locked memory: depending on the kernel, glommio's io_uring rings and
# registered buffers are charged to RLIMIT_MEMLOCK, so a low soft limit can
# make executors fail to start. Only root with CAP_SYS_RESOURCE could go past
# the hard limit, and containers usually lack it, so raise soft to hard. This
# only raises the limit for this shell (and anything it starts); test.sh
# raises it again for the tests themselves.
hard=$(ulimit -H -l)
ulimit -S -l "$hard"
log "ulimit -l: $(ulimit -l) KiB (hard limit: $hard)"

log "done"
