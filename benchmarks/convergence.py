"""Convergence study of the embedded default's recipe: how many epochs, on the validation split.

The recipe's step schedule is a fraction of the epochs (lr / 10 at 50 % and 75 %), so a shorter
run is not a prefix of a longer one: each epoch count E of the grid is its own training run. For
each network, the run's last-epoch validation top-1 % of every exit goes into the CSV.

Rule (fixed before the runs): E* is the smallest E of the grid after which the mean over the
networks of the last exit's validation top-1 % gains less than 0.5 points at the next E of the
grid. The test split is never read.

    python benchmarks/convergence.py --out docs/convergence.csv        # 2 jobs at a time

Each job is `msdnet train` with one thread (as in the workflow), so the numbers are the
pinned-kernel numbers (msdnet.core.kernels) every machine gets.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NETWORKS = {   # the networks the anytime finding compares (config/config.yaml)
    "msdnet-anytime": "config/models/mini/msdnet-anytime.yaml",
    "resnet-mc": "config/models/mini/resnet-mc.yaml",
    "densenet-mc": "config/models/mini/densenet-mc.yaml",
}
GRID = (4, 8, 12, 16)
RECIPE = "config/recipes/digits-hard.yaml"
GAIN = 0.5


def recipe_sets(preset: str) -> list[str]:
    """The preset's recipe_set, as --set arguments."""
    import yaml

    cfg = yaml.safe_load(Path(preset).read_text(encoding="utf-8"))
    return [f"{k}={v}" for k, v in (cfg.get("recipe_set") or {}).items() if k != "train.epochs"]


def train(name: str, config: str, epochs: int, sets: list[str], root: Path) -> list[dict]:
    out = root / name / f"e{epochs}"
    cmd = [str(Path(sys.executable).parent / "msdnet"), "train", config, "--recipe", RECIPE, "--out", str(out),
           "--set", f"train.epochs={epochs}", "--set", "train.progress=none"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    with open(out / "metrics.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    exits = sorted(int(k.removeprefix("val_acc_exit")) for k in last if k.startswith("val_acc_exit"))
    return [{"network": name, "epochs": epochs, "exit": k, "exits": len(exits),
             "val_top1": float(last[f"val_acc_exit{k}"])} for k in exits]


def choose(rows: list[dict]) -> tuple[int | None, list[tuple[int, float]]]:
    last = {}
    for r in rows:
        if r["exit"] == r["exits"]:
            last.setdefault(r["epochs"], []).append(r["val_top1"])
    means = sorted((e, sum(v) / len(v)) for e, v in last.items())
    for (e, a), (_, b) in zip(means, means[1:]):
        if b - a < GAIN:
            return e, means
    return None, means


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="config/config.yaml")
    ap.add_argument("--out", default="docs/convergence.csv")
    ap.add_argument("--runs", default="results/convergence", help="run directories (resumable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--grid", type=int, nargs="+", default=list(GRID))
    args = ap.parse_args()
    sets = recipe_sets(args.preset)
    jobs = [(n, c, e) for e in sorted(args.grid, reverse=True) for n, c in NETWORKS.items()]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: train(*j, sets, Path(args.runs)), jobs))
    rows = sorted((r for rs in results for r in rs), key=lambda r: (r["network"], r["epochs"], r["exit"]))
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["network", "epochs", "exit", "exits", "val_top1"])
        w.writeheader()
        w.writerows(rows)
    best, means = choose(rows)
    print("mean last-exit val top-1 %: " + ", ".join(f"E={e}: {a:.2f}" for e, a in means))
    if best is None:
        print(f"E* not reached within the grid: every step gains {GAIN} points or more")
    else:
        print(f"E* = {best} (the next grid point gains < {GAIN} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
