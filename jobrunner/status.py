"""queue-job-runner status: per database and channel, jobs by state, the
oldest pending age, running against capacity; live runners with what they
have in flight; dead runners waiting for recovery. A table, or --json."""

import json
import sys

from . import config as config_mod, db as dbmod, limits as limits_mod, queries, schedule, schema
from .channels import parse_channels
from .plan import normalize_channel
from .errors import ConfigError, first_line

STATES = ("wait_dependencies", "pending", "enqueued", "started", "done", "failed", "cancelled")


def collect(cr, dbname, string_limits=None):
    """Everything `status` shows for one database, as plain data."""
    schema.check_ready(cr, dbname)
    cr.execute(queries.get("status_channels"))
    channels = {}
    for channel, state, count, oldest in cr.fetchall():
        ch = channels.setdefault(channel, {"channel": channel, "states": {}, "oldest_pending_s": None})
        ch["states"][state] = count
        if oldest is not None:
            ch["oldest_pending_s"] = float(oldest)
    all_runners = runners(cr)
    rows = limits_mod.read_rows(cr) or {}
    limits = limits_mod.merge(string_limits or {}, rows)
    live = [r for r in all_runners if r["alive"]]
    for r in all_runners:
        if not r["alive"]:
            del r["capacity"]  # a dead runner runs nothing
    for ch in channels.values():
        ch["running"] = ch["states"].get("enqueued", 0) + ch["states"].get("started", 0)
        lim = limits.get(normalize_channel(ch["channel"]))
        ch["global_limit"] = _describe(lim) if lim else None
    return {
        "database": dbname,
        "channels": sorted(channels.values(), key=lambda c: c["channel"]),
        "running": sum(c["running"] for c in channels.values()),
        "capacity": sum(r["capacity"] for r in live),  # the live runners' root capacities
        "executors": executors(live),
        "limits": {name: _describe(lim) for name, lim in sorted(limits.items())},
        "runners": live,
        "dead_runners": [r for r in all_runners if not r["alive"]],
        # present: stock queue_job's runner may be at work, and it is not listed
        "stock_trigger": schema.stock_trigger_present(cr),
        "periodic": periodic_definitions(cr),
    }


def runners(cr):
    """Registered runners (query status_runners): alive = their liveness
    lock is held now; in_flight; capacity = their root capacity."""
    cr.execute(queries.get("status_runners"))
    found = [{"id": r[0], "host": r[1], "pid": r[2], "since": r[3].isoformat(sep=" ", timespec="seconds")
              if r[3] else None, "version": r[4], "channels": r[5], "executor": r[6],
              "executor_workers": r[7], "alive": r[8], "in_flight": r[9]}
             for r in cr.fetchall()]
    for r in found:
        try:
            r["capacity"] = parse_channels(r["channels"]).total_capacity or 0
        except ConfigError:  # a registry row we cannot read: count nothing for it
            r["capacity"] = 0
    return found


def periodic_definitions(cr):
    """Each periodic definition: its schedule, when it is next due (the tick
    after its latest decided one: in the past while no runner is up) and its
    latest job with that job's state."""
    cr.execute(queries.get("status_periodic"))
    out = []
    for pid, name, active, interval, cron, tz, start, tick, skipped, uuid, state in cr.fetchall():
        item = {"id": pid, "name": name, "active": active, "next_fire": None, "error": None,
                "schedule": f"every {interval}s" if interval is not None
                else f"cron {cron} ({tz or 'UTC'})",
                "last_tick": tick, "last_skipped": skipped, "last_job": uuid, "last_state": state}
        try:
            sched = schedule.build(interval, cron, tz, start)
            if active:
                item["next_fire"] = schedule.first_due(sched, tick)
        except ConfigError as exc:
            item["error"] = str(exc)
        out.append(item)
    return out


LOCAL = ("localhost", "127.", "0.0.0.0", "::1", "[::1]")  # addresses of the runner's own host


def executors(live):
    """Live runners grouped by the Odoo they dispatch to, with their total
    capacity and that Odoo's HTTP workers when a runner was told them."""
    groups = {}
    for r in live:
        if not r["executor"]:  # a runner older than schema version 3
            continue
        # one Odoo whichever local address names it, and one per host: localhost
        # on two hosts is two Odoo servers
        target, host = r["executor"], None
        if target.startswith(LOCAL):
            target, host = "localhost:" + target.rpartition(":")[2], r["host"]
        g = groups.setdefault((target, host), {"executor": target, "host": host, "runners": 0,
                                               "capacity": 0, "workers": None})
        g["runners"] += 1
        g["capacity"] += r["capacity"]
        if r["executor_workers"]:  # told differently: the largest, to warn only when surely over
            g["workers"] = max(g["workers"] or 0, r["executor_workers"])
    for g in groups.values():
        g["over"] = g["workers"] is not None and g["capacity"] > g["workers"]
    return sorted(groups.values(), key=lambda g: (g["executor"], g["host"] or ""))


def _describe(lim):
    parts = []
    if lim.sequential:
        parts.append("sequential")
    elif lim.capacity:
        parts.append(f"capacity {lim.capacity}")
    if lim.throttle:
        parts.append(f"throttle {lim.throttle}s")
    if lim.paused:
        parts.append("paused")
    return ", ".join(parts)


def age(seconds):
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def render(report):
    out = [f"database {report['database']}: {report['running']} running / capacity {report['capacity']} "
           f"({len(report['runners'])} live runner(s))", ""]
    header = ["channel", *STATES, "oldest pending", "global limit"]
    table = [header]
    for ch in report["channels"]:
        table.append([ch["channel"], *(str(ch["states"].get(s, 0)) for s in STATES),
                      age(ch["oldest_pending_s"]), ch["global_limit"] or "-"])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    out.append("")
    if report["runners"]:
        out.append("live runners:")
        for r in report["runners"]:
            out.append(f"  #{r['id']} {r['host']} pid {r['pid']} since {r['since']} UTC "
                       f"channels {r['channels']} in flight {r['in_flight']}")
    else:
        out.append("live runners: none")
    for g in report["executors"]:
        if g["over"]:
            where = g["executor"] + (f" on {g['host']}" if g["host"] else "")
            out.append(f"warning: runners targeting {where} have total capacity {g['capacity']} but "
                       f"that Odoo has {g['workers']} HTTP workers: jobs will wait in its backlog; "
                       "lower channels root capacity (see the guide's Sizing)")
    if report["stock_trigger"]:
        out.append("stock queue_job_notify trigger present: the flag is off in this database (or "
                   "the addon was not updated since it was turned on); stock queue_job's runner "
                   "is not listed here")
    if report["periodic"]:
        out.append("periodic jobs:")
    for p in report["periodic"]:
        if p["error"]:
            when = f"not timed: {p['error']}"
        elif not p["active"]:
            when = "inactive"
        else:
            when = f"next {p['next_fire']:%Y-%m-%d %H:%M:%S} UTC"
        last = "no job yet"
        if p["last_job"]:
            last = (f"last job {p['last_job']} {p['last_state'] or 'deleted'}"
                    + (" (its tick skipped: still running)" if p["last_skipped"] else ""))
        out.append(f"  #{p['id']} {p['name']}: {p['schedule']}, {when}, {last}")
    for r in report["dead_runners"]:
        out.append(f"dead runner #{r['id']} {r['host']} pid {r['pid']}: {r['in_flight']} job(s) wait for "
                   "recovery by a live runner")
    return "\n".join(out)


def main(args):
    cfg = config_mod.build(args)
    names = cfg.databases
    if not names:
        names = schema.discover(cfg)
    string_limits = limits_mod.from_tree(cfg.channel_tree)
    reports = []
    for name in names:
        try:
            conn = dbmod.connect(cfg.db, name, application_name="queue-job-status", connect_timeout=10)
        except dbmod.OperationalError as exc:
            raise ConfigError(f"cannot connect to database {dbmod.describe(cfg.db, name)}: "
                              f"{first_line(exc)}") from None
        try:
            # one snapshot for all its queries: totals and per-runner counts agree
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
            with conn.cursor() as cr:
                reports.append(collect(cr, name, string_limits))
            conn.rollback()
        finally:
            conn.close()
    if getattr(args, "json", False):
        json.dump(reports, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(render(r) for r in reports))
    return 0
