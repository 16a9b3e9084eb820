"""`msdnet train` on a GPU, three ways, on the embedded digits data: the fast path matches plain.

    python benchmarks/gpu_train_check.py [--epochs 4] [--device cuda] [--runs plain,fast,graphs] [--out DIR]

Trains ``config/models/msdnet-digits.yaml`` with ``config/recipes/digits.yaml`` (its short last
batch exercises the eager fallback of a compiled step) for ``--epochs`` epochs:

* plain: float32, NCHW, eager;
* fast: what ``auto`` picks on the device (bf16 autocast + channels_last on a recent GPU);
* graphs: fast + ``compile: true`` + ``compile_mode: reduce-overhead`` (CUDA graphs).

It prints each run's per-epoch training loss (summed over the exits), final validation top-1 %
per exit and seconds per epoch, and fails (exit 1) when a fast curve strays from the plain one
by more than 0.15 at some epoch (tests/test_speed.py's tolerance) *and* by more on average
than a plain run with another seed (``plain_seed1``) does, or when it does not learn. Not a test: it needs a GPU, and a
machine without one skips nothing but fails at once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from msdnet.core.config import load_yaml
from msdnet.training.train import make_run_config, train

REPO = Path(__file__).resolve().parents[1]
RUNS = {
    "plain": {"precision": "fp32", "channels_last": False},
    "plain_seed1": {"precision": "fp32", "channels_last": False, "seed": 1},
    "fast": {},
    "graphs": {"compile": True, "compile_mode": "reduce-overhead"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of " + ", ".join(RUNS))
    ap.add_argument("--out", default=None, help="run directories (default: a temporary folder)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_train_check-"))
    model = load_yaml(REPO / "config/models/msdnet-digits.yaml")
    curves, summary = {}, []
    for name in args.runs.split(","):
        keys = RUNS[name]
        recipe = load_yaml(REPO / "config/recipes/digits.yaml")
        recipe["data"]["root"] = str(out / "data")
        recipe["train"].update(epochs=args.epochs, device=args.device, progress="none", **keys)
        t0 = time.perf_counter()
        ckpt = train(make_run_config(model, recipe), out / name, log=print)
        wall = time.perf_counter() - t0
        rows = ckpt["metrics"]
        curves[name] = [sum(v for k, v in r.items() if k.startswith("train_loss")) for r in rows]
        val = [v for k, v in rows[-1].items() if k.startswith("val_acc")]
        summary.append(f"| {name} | {ckpt['policy']} | " + " ".join(f"{c:.3f}" for c in curves[name])
                       + f" | {' '.join(f'{v:.1f}' for v in val)} | {rows[0]['seconds']:.1f} / "
                       f"{rows[-1]['seconds']:.2f} | {wall:.1f} |")
    print("\n| run | policy | train loss per epoch | val top-1 % per exit | s first / last epoch | wall s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(summary))
    ok = True
    mean_gap = lambda a, b: sum(abs(x - y) for x, y in zip(a, b)) / len(a)   # noqa: E731
    noise = mean_gap(curves["plain_seed1"], curves["plain"]) if "plain_seed1" in curves else 0.0
    print(f"seed-to-seed noise of plain (mean gap): {noise:.3f}")
    for name in [n for n in curves if not n.startswith("plain")]:
        gaps = [abs(a - b) for a, b in zip(curves[name], curves["plain"])]
        learns = curves[name][-1] < curves[name][0] - 0.3
        within = max(gaps) < 0.15 or mean_gap(curves[name], curves["plain"]) < noise
        print(f"{name}: gap to plain max {max(gaps):.3f} mean {sum(gaps) / len(gaps):.3f} "
              f"(pass: max < 0.15 or mean < seed noise); learns: {learns}")
        ok = ok and within and learns
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
