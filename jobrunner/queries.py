"""Named SQL queries, loaded once from the package's .sql files.

A query starts at a line ``-- name: <name>`` and runs to the next one;
parameters are psycopg2 pyformat (``%(name)s``). Every ``sql/*.sql`` file of
queries shares one namespace (a name defined twice is an error at load).
``{lock:NAME}`` stands for an advisory lock class id of LOCK_CLASSES.
"""

import functools
import pathlib
import re

SQL_DIR = pathlib.Path(__file__).with_name("sql")
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_LOCK = re.compile(r"\{lock:(\w+)\}")

# Advisory lock class ids (the first key of a two-key lock), one per use.
# Operators see them in pg_locks.classid (migration_guide/troubleshooting.rst).
LOCK_CLASSES = {
    "runner": 1363825484,  # objid = runner id: held while the runner lives
    "migration": 1363825485,  # objid 0: schema migrations, one at a time
    "group": 1363825486,  # objid = hashtext(group): claims of a limited group
}


def expand(text):
    """Put the lock class ids in place of their {lock:NAME} names."""
    return _LOCK.sub(lambda m: str(LOCK_CLASSES[m.group(1)]), text)


def parse(text):
    """Split a queries file into {name: sql}; text before the first name is
    ignored, and so is a query's final semicolon (queries may be sent together)."""
    parts = _NAME.split(expand(text))
    return {name: body.strip().rstrip(";").rstrip() for name, body in zip(parts[1::2], parts[2::2])}


@functools.lru_cache(maxsize=None)
def load(path):
    """Named queries of a file: a name in sql/, or a path (test support's own)."""
    return parse((SQL_DIR / path).read_text())


@functools.lru_cache(maxsize=None)
def _all():
    found = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        for name, sql in load(path.name).items():
            if name in found:
                raise RuntimeError(f"query {name!r} is defined twice ({path.name})")
            found[name] = sql
    return found


def get(name):
    return _all()[name]


@functools.lru_cache(maxsize=None)
def prepared(name, params):
    """(PREPARE text, EXECUTE text) of named query `name` as the server-side
    prepared statement qjsl_<name>. params: its pyformat parameters as
    (name, SQL type) pairs, in the order of $1..$n; the EXECUTE text takes
    the same parameter dict as the query itself, and so does the PREPARE
    text (its %% stay escaped): both may be sent in one execute()."""
    sql = get(name)
    for i, (param, _type) in enumerate(params, 1):
        sql = sql.replace(f"%({param})s", f"${i}")
    left = re.search(r"%\((\w+)\)s", sql)
    if left:
        raise RuntimeError(f"query {name!r}: parameter {left.group(1)!r} has no type in params")
    stmt = f"qjsl_{name}"
    types = ", ".join(t for _p, t in params)
    execute = f"EXECUTE {stmt}(" + ", ".join(f"%({p})s" for p, _t in params) + ")"
    return f"PREPARE {stmt}({types}) AS {sql}", execute


def sql_file(relpath):
    """Whole contents of a .sql file of the package (migrations, stock trigger)."""
    return expand((SQL_DIR / relpath).read_text())
