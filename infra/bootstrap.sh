#!/usr/bin/env bash
# Create .venv with the locked dependencies (idempotent; fast when nothing changed).
# torch comes from ../shared/wheels (CPU build) when that folder has it, so no CUDA
# packages are pulled; elsewhere `pip install ".[ml]"` gets torch from the index. The lock is
# the platform and dev extras (`uv pip compile pyproject.toml --extra dev --extra platform`).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "gridlake bootstrap: $*" >&2; exit 1; }

PY=${GRIDLAKE_PYTHON:-$(command -v python3.11 || true)}
[ -n "$PY" ] || fail "Python 3.11 not found: install python3.11 or set GRIDLAKE_PYTHON=/path/to/python3.11"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || fail "$PY is not Python 3.11 (GridLake pins 3.11: apache-flink 2.2 wheels); set GRIDLAKE_PYTHON"
command -v java >/dev/null || fail "java not found: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || fail "mvn not found: install Maven (e.g. apt-get install maven)"

if ! "$PY" -m uv --version >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check "uv==0.13.8" || fail "could not install uv from PyPI"
fi
UV=("$PY" -m uv)

stamp=.venv/.gridlake-lock-hash
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x .venv/bin/python ] || "${UV[@]}" venv -q --python "$PY" .venv
  "${UV[@]}" pip sync -q --python .venv/bin/python requirements.lock
  "${UV[@]}" pip install -q --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi

# PostgreSQL server programs: the API's tests run its user store on a private PostgreSQL
# (SQLite is the embedded default). Installed with apt like redis-server, when root.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null; } \
      || echo "gridlake bootstrap: could not install postgresql (the API's PostgreSQL tests will be skipped)" >&2
  else
    echo "gridlake bootstrap: postgresql not installed (apt-get install postgresql); the API's PostgreSQL tests will be skipped" >&2
  fi
fi

# Nginx serves the dashboard (a stack service, infra/stack/nginx.py) and Chromium runs the
# dashboard's browser tests (Playwright drives the system browser; nothing is downloaded).
# Installed like PostgreSQL when root; without them `gridlake setup` says what to do.
apt_optional() {  # <command> <package> <what is lost without it>
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null; } \
      || echo "gridlake bootstrap: could not install $2 ($3)" >&2
  else
    echo "gridlake bootstrap: $2 not installed (apt-get install $2); $3" >&2
  fi
}
PATH="$PATH:/usr/sbin" apt_optional nginx nginx "the dashboard is not served"
apt_optional chromium chromium "the dashboard's browser tests will be skipped"

wheels=../shared/wheels
if [ -d "$wheels" ] && ls "$wheels"/torch-*.whl >/dev/null 2>&1; then
  if ! .venv/bin/python -c 'import torch' >/dev/null 2>&1; then
    tv=$(basename "$(ls "$wheels"/torch-*.whl | head -1)" | cut -d- -f2)
    "${UV[@]}" pip install -q --python .venv/bin/python --find-links "$wheels" "torch==$tv" \
      || fail "could not install torch $tv from $wheels"
  fi
fi
echo "gridlake bootstrap: .venv ready ($(.venv/bin/python --version))"
