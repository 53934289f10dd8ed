"""Every scenario of `python -m benchmarks all` imports (a broken import
showed only after an hour-long run had measured the scenarios before it)."""

import importlib

import pytest

from benchmarks.report import PLAN


@pytest.mark.parametrize("name", [name for name, _args in PLAN])
def test_each_benchmark_scenario_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.run)
