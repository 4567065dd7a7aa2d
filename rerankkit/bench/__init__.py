"""Benchmark runs: configs of conditions x datasets, cached model calls, cost accounting, reports, checks.

    >>> from rerankkit.bench import load_config, run_bench, write_report, check
    >>> cfg = load_config("eval/configs/quick-cpu.yaml")     # validated; no model is loaded
    >>> records = run_bench(cfg, "out/quick-cpu")            # one results line per condition x dataset
    >>> write_report(cfg, "out/quick-cpu"); rows = check(cfg, records)

The command line is ``rerankkit bench CONFIG.yaml [--check] [--only COND/DATASET] [--out DIR]``.
"""

from __future__ import annotations

from .check import CheckRow, check, format_check
from .config import BenchConfig, Condition, Expectation, load_config
from .report import write_report
from .results import read_results
from .runner import cache_path, default_output, run_bench

__all__ = [
    "BenchConfig", "CheckRow", "Condition", "Expectation", "cache_path", "check", "default_output", "format_check",
    "load_config", "read_results", "run_bench", "write_report",
]
