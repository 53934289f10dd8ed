import importlib
import sys

from . import __doc__ as usage

NAMES = ("dispatch", "cpu", "peers", "ceiling", "claim_rate", "notify_cost", "latency", "idle", "bigtable", "limits")

if len(sys.argv) < 2 or sys.argv[1] not in NAMES + ("all",):
    print(usage)
    sys.exit(2)
if sys.argv[1] == "all":
    from .report import main as report_main

    sys.exit(report_main(sys.argv[2:]))
print(importlib.import_module(f"benchmarks.{sys.argv[1]}").run(sys.argv[2:]).markdown())
