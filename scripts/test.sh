#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian/Ubuntu machine, then run every test
# (all markers: slow, spark, redis, text). Usage: bash scripts/test.sh [pytest args...]
#
# What it does, each step idempotent:
#   1. Debian packages: redis-server (real Redis for the cache tests) and a Java runtime for
#      PySpark (skipped when `java` is already on PATH).
#   2. A virtual environment in .venv with the package and every extra installed.
#   3. A redis-server on a free loopback port for the run (REDIS_URL), stopped on exit.
#   4. pytest over tests/, where a skipped test counts as a failure (PINNERSAGE_NO_SKIP=1), so a
#      missing service cannot pass unnoticed. The one test that reads the public logs beside the
#      clone (marker shared_data: ../shared/data, or $PINNERSAGE_SHARED_DATA) runs where they
#      exist and is deselected, with a line saying so, where they do not.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing pinnersage with every extra"
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build that the machine image carries (see [text] in pyproject.toml)
.venv/bin/python -m pip install -q -e ".[all,text,dev]"

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis_dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
  --daemonize yes --pidfile "$redis_dir/redis.pid" >/dev/null
cleanup() { [ -f "$redis_dir/redis.pid" ] && kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true; rm -rf "$redis_dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  .venv/bin/python -c 'import time; time.sleep(0.05)'
done
export REDIS_URL="redis://127.0.0.1:$port/0"
export PINNERSAGE_NO_SKIP=1
export HF_HUB_OFFLINE=1
select=()
shared=${PINNERSAGE_SHARED_DATA:-../shared/data}
if [ -d "$shared/online-retail/by-day" ]; then
  PINNERSAGE_SHARED_DATA="$(cd "$shared" && pwd)"; export PINNERSAGE_SHARED_DATA
else
  echo "== no public logs at $shared: the check of the shipped Online Retail copy against the raw days (marker shared_data) is not run"
  select=(-m "not shared_data")
fi
echo "== running the tests (REDIS_URL=$REDIS_URL)"
# a -m given on the command line comes later and wins
.venv/bin/python -m pytest tests "${select[@]}" "$@"
