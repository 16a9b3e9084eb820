"""Time the budgeted-batch threshold sweep: 10,000 validation + 10,000 test images, 10 exits.

    .venv/bin/python benchmarks/bench_budgeted.py [--images 10000] [--exits 10] [--classes 100]

Prints the time to compute the confidences (once per split) and the time of the paper's sweep
over the 39 values of p (thresholds on validation, applied to both splits), best of --repeat.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from msdnet.evaluation.analysis.budgeted import BudgetedEvaluator
from msdnet.evaluation.analysis.synthetic import make_predictions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--exits", type=int, default=10)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    val = make_predictions(rng, args.exits, args.images, args.classes)
    test = make_predictions(rng, args.exits, args.images, args.classes)
    test.exit_macs = val.exit_macs.copy()

    prep, sweep, budget = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ev = BudgetedEvaluator(val, test)
        t1 = time.perf_counter()
        points = ev.sweep()
        t2 = time.perf_counter()
        ev.at_budget(float(np.mean(val.exit_macs)))
        t3 = time.perf_counter()
        prep.append(t1 - t0)
        sweep.append(t2 - t1)
        budget.append(t3 - t2)
    print(f"{args.images} images x {args.exits} exits x {args.classes} classes (val and test each)")
    print(f"confidences, both splits (once): {min(prep) * 1e3:8.1f} ms")
    print(f"sweep of {len(points)} p values:        {min(sweep) * 1e3:8.1f} ms")
    print(f"confidences + sweep:              {(min(prep) + min(sweep)) * 1e3:8.1f} ms")
    print(f"one target budget (search):       {min(budget) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
