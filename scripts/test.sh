#!/usr/bin/env bash
# The project's single test command: installs prerequisites, then builds and
# runs every test (unit, integration, differential corpus) in release mode.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> setup"
bash scripts/setup.sh

# setup.sh raised the limit only in its own shell; the servers the tests start
# inherit it from this one.
ulimit -S -l "$(ulimit -H -l)"
echo "==> ulimit -l: $(ulimit -l) KiB"

# Release mode: the servers are benchmarked and tested as they ship, and the
# integration tests spawn the release binary that this same build produces.
echo "==> cargo test --release"
# --no-fail-fast: report every failing test binary, not just the first.
cargo test --release --no-fail-fast
bash scripts/redis-py-tests.sh
echo "==> all tests passed"
