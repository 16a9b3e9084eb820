"""Analysis: pure functions from predictions arrays to tidy (long-format) pandas tables.

    anytime     per-exit accuracy against cumulative MACs          anytime_table
    budgeted    the paper's dynamic-evaluation thresholds           budgeted_sweep, at_budget,
                                                                    envelope, budgeted_table,
                                                                    budgeted_exit_table
    ensemble    smallest-first ensembles as a predictions file      build_ensemble
    staircase   single intermediate classifier at varying depth     staircase_table, run_row,
                                                                    baseline_row
    easy_hard   images leaving at exit 1 vs only the last right     easy_hard_table,
                                                                    easy_hard_from_budget
    combiners   beyond the paper: exit combiners, per-exit          combine, exit_metrics,
                temperature scaling, ECE, NLL, monotonicity         fit_temperatures

Every table's columns are documented in its module's docstring; ``common.write_csv`` writes a
table atomically. No torch is needed here.
"""

from .anytime import anytime_table
from .budgeted import (BudgetedEvaluator, BudgetedPoint, at_budget, budgeted_exit_table,
                       budgeted_sweep, budgeted_table, envelope, find_thresholds)
from .common import write_csv
from .easy_hard import easy_hard_from_budget, easy_hard_table
from .ensemble import build_ensemble
from .staircase import baseline_row, run_row, staircase_table

__all__ = [
    "anytime_table", "BudgetedEvaluator", "BudgetedPoint", "at_budget", "budgeted_exit_table",
    "budgeted_sweep", "budgeted_table", "envelope", "find_thresholds", "write_csv",
    "easy_hard_from_budget", "easy_hard_table", "build_ensemble", "baseline_row", "run_row",
    "staircase_table",
]
