"""Shared set-up: the same throwaway cluster as the tests, durable settings."""

import contextlib
import os
import platform
import statistics

import psycopg2

from jobrunner.testing.fixtures import build_db
from jobrunner.testing.pgcluster import Cluster


def cluster(fast=False):
    """fast=False keeps fsync and synchronous_commit on: commit costs are real."""
    return Cluster(fast=fast).start()


def summary(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, unit="", digits=0):
    """Median [min–max]; the median of an even count is the mean of the middle two."""
    med, lo, hi = summary(values)
    return f"{med:,.{digits}f}{unit} [{lo:,.{digits}f}–{hi:,.{digits}f}]"


def environment(conn):
    with conn.cursor() as cr:
        cr.execute("SELECT version()")
        version = cr.fetchone()[0].split(" on ")[0]
        cr.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                   "('fsync','synchronous_commit','shared_buffers','max_connections') ORDER BY 1")
        settings = ", ".join(f"{k}={v}" for k, v in cr.fetchall())
    return (f"{version}; {settings}; python {platform.python_version()}, "
            f"psycopg2 {psycopg2.__version__.split()[0]}; {os.cpu_count()} CPUs")


def ratio_fmt(values, baseline, digits=1):
    """Median [min–max] of per-repetition ratios values[i] / baseline[i]."""
    ratios = sorted(v / b for v, b in zip(values, baseline) if b)
    if not ratios:
        return "–"
    d = digits
    return f"{statistics.median(ratios):.{d}f}× [{ratios[0]:.{d}f}–{ratios[-1]:.{d}f}]"


class Section:
    """One scenario's results, as RESULTS.md shows them."""

    def __init__(self, title, command, body, env, figures=(), data=None):
        self.title, self.command, self.body, self.env = title, command, body, env
        self.figures, self.data = list(figures), data

    def markdown(self):
        out = [f"## {self.title}", "", f"`{self.command}`", "", self.body, ""]
        for fig in self.figures:
            out += [f"![{self.title}]({fig})", ""]
        return "\n".join(out)


PLOTS = os.path.join(os.path.dirname(__file__), "plots")


def plot_bars(name, ylabel, groups, series):
    """A grouped bar chart (median, min–max whiskers) in benchmarks/plots/NAME.png;
    returns its path relative to benchmarks/, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    os.makedirs(PLOTS, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(series))
    for i, (label, per_group) in enumerate(series.items()):
        xs, meds, lo, hi = [], [], [], []
        for g, values in enumerate(per_group):
            if not values:
                continue
            med, mn, mx = summary(values)
            xs.append(g + i * width)
            meds.append(med)
            lo.append(med - mn)
            hi.append(mx - med)
        ax.bar(xs, meds, width, yerr=[lo, hi], label=label, capsize=3)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(name)
    fig.tight_layout()
    path = os.path.join(PLOTS, f"{name}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"plots/{name}.png"


@contextlib.contextmanager
def bench_db(trigger=False):
    """A throwaway cluster with one migrated database `bench` (17.0 schema):
    yields (cluster, Database, environment line)."""
    c = cluster()
    try:
        db = build_db(c, "bench", trigger=trigger)
        yield c, db, environment(db.conn)
        db.close()
    finally:
        c.destroy()
