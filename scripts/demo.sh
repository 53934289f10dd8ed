#!/usr/bin/env bash
# The demo command of README.rst: installs what it needs, then runs the demo
# on an embedded throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure_deps.sh
exec python3 -m jobrunner demo "$@"
