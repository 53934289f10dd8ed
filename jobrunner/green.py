"""gevent for the runner and the reference executor: many HTTP requests in
flight on one thread, psycopg2 made cooperative by a wait callback."""

_patched = False
# Seconds a database round trip may go without answer before the connection
# counts as lost (set by patch(); None: wait forever). TCP keepalives
# catch a dead peer only when the network drops packets; this also catches
# a path that accepts bytes and never answers.
DB_TIMEOUT = None


def patch(db_timeout=None):
    """Monkey-patch the process once, before sockets or threads are made."""
    global _patched, DB_TIMEOUT
    DB_TIMEOUT = db_timeout
    if _patched:
        return
    from gevent import monkey

    monkey.patch_all()
    import psycopg2.extensions

    psycopg2.extensions.set_wait_callback(_wait_callback)
    _patched = True


def _wait_callback(conn, timeout=None):
    import psycopg2.extensions as ext
    from gevent.socket import wait_read, wait_write

    timeout = DB_TIMEOUT if timeout is None else timeout
    try:
        while True:
            state = conn.poll()
            if state == ext.POLL_OK:
                return
            if state == ext.POLL_READ:
                wait_read(conn.fileno(), timeout=timeout)
            elif state == ext.POLL_WRITE:
                wait_write(conn.fileno(), timeout=timeout)
            else:
                raise psycopg2.OperationalError(f"bad poll state {state!r}")
    except TimeoutError:  # gevent's socket.timeout
        raise psycopg2.OperationalError(f"no answer from the database in {timeout:g}s") from None


import psycopg2  # noqa: E402  (used by the callback's error path)
