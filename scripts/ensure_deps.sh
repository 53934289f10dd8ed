# Sourced by test.sh and demo.sh: PostgreSQL server binaries and Python packages.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "PostgreSQL server binaries missing: apt-get install -y postgresql" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
    else
        echo "PostgreSQL server binaries not found: install them with: apt-get install -y postgresql" >&2
        exit 1
    fi
fi
# checked from / so that the current directory does not hide an install of
# another checkout (tests start processes that import from the install)
here=$(pwd)
if ! (cd / && python3 -c "import jobrunner, psycopg2, gevent, werkzeug, cronsim, pytest_postgresql, pytest_timeout, pylint_odoo, requests, yaml") >/dev/null 2>&1 \
   || ! (cd / && python3 -c "import jobrunner, os, sys; sys.exit(os.path.dirname(os.path.dirname(os.path.realpath(jobrunner.__file__))) != os.path.realpath(sys.argv[1]))" "$here") 2>/dev/null \
   || ! (cd / && queue-job-runner --version) >/dev/null 2>&1; then
    python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi
if [ "${QJSL_NEED_PGBOUNCER:-0}" = 1 ] && ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "pgbouncer missing (for the PgBouncer test): apt-get install -y pgbouncer" >&2
        apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
    else
        echo "pgbouncer not found: the PgBouncer test is skipped (apt-get install -y pgbouncer)" >&2
    fi
fi
# promtool, for the alert rules' tests: Debian's prometheus package. Only the
# tool is wanted: no server is started (a policy-rc.d refusing starts while it
# installs, where none is in place) nor enabled at boot.
if [ "${QJSL_NEED_PROMTOOL:-0}" = 1 ] && ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "promtool missing (for the alert rules' tests): apt-get install -y --no-install-recommends prometheus" >&2
        policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        fi
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null || true
        if [ -n "$policy" ]; then rm -f "$policy"; fi
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now prometheus >/dev/null 2>&1 || true
        fi
    else
        echo "promtool not found: the alert rules' tests are skipped (apt-get install -y --no-install-recommends prometheus)" >&2
    fi
fi
