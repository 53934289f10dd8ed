import importlib
import sys

from . import __doc__ as usage

NAMES = ("claim_rate", "notify_cost", "limits")

if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
    print(usage)
    sys.exit(2)
sys.exit(importlib.import_module(f"benchmarks.{sys.argv[1]}").main(sys.argv[2:]))
