"""Shared set-up: the same throwaway cluster as the tests, durable settings."""

import os
import platform
import statistics

import psycopg2

from jobrunner import db as dbmod, queries, schema
from jobrunner.pgcluster import Cluster


def cluster(fast=False):
    """fast=False keeps fsync and synchronous_commit on: commit costs are real."""
    return Cluster(fast=fast).start()


def create_db(c, name, version="17", migrate=True, trigger=True):
    c.createdb(name)
    conn = dbmod.connect(c.conninfo(), name)
    with conn.cursor() as cr:
        cr.execute(queries.sql_file(f"stock/queue_job_{version}.sql"))
        if trigger:
            cr.execute(queries.sql_file("stock/notify_trigger.sql"))
        if migrate:
            schema.migrate(cr, name)
    return conn


def summary(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, unit=""):
    med, lo, hi = summary(values)
    return f"{med:,.0f}{unit} [{lo:,.0f}–{hi:,.0f}]"


def environment(conn):
    with conn.cursor() as cr:
        cr.execute("SELECT version()")
        version = cr.fetchone()[0].split(" on ")[0]
        cr.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                   "('fsync','synchronous_commit','shared_buffers','max_connections') ORDER BY 1")
        settings = ", ".join(f"{k}={v}" for k, v in cr.fetchall())
    return (f"{version}; {settings}; python {platform.python_version()}, "
            f"psycopg2 {psycopg2.__version__.split()[0]}; {os.cpu_count()} CPUs")
