"""Named SQL queries, loaded once from the package's .sql files."""

import functools
import pathlib
import re

SQL_DIR = pathlib.Path(__file__).with_name("sql")
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text):
    """Split a queries file into {name: sql}; text before the first name is ignored."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}


@functools.lru_cache(maxsize=None)
def load(filename="queries.sql"):
    return parse((SQL_DIR / filename).read_text())


@functools.lru_cache(maxsize=None)
def load_path(path):
    """Named queries of a file outside sql/ (the test support's own)."""
    return parse(pathlib.Path(path).read_text())


def get(name):
    return load()[name]


def sql_file(relpath):
    """Whole contents of a .sql file of the package (schema, stock fixtures)."""
    return (SQL_DIR / relpath).read_text()
