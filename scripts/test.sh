#!/usr/bin/env bash
# The test command of README.rst: installs what the suite needs, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
export QJSL_NEED_PGBOUNCER=1 QJSL_NEED_PROMTOOL=1
. scripts/ensure_deps.sh
exec python3 -m pytest "$@"
