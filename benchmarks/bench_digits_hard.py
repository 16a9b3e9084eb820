"""How hard, how big and how fast is ``digits-hard`` (msdnet.data.digits_hard)?

Default: one table with the generation seconds (from nothing, one thread), the cache read
seconds, the split sizes and the test accuracy of a quick scikit-learn logistic regression on
raw pixels, for plain ``digits`` next to ``digits-hard`` (so a reader sees it is harder), plus
that accuracy per difficulty quartile of ``digits-hard``.

``--train``: also train the small ``config/models/*-digits.yaml`` networks on ``digits-hard``
through the Python API (make_run_config + train, one thread) and print seconds per epoch and
the per-exit test accuracy after each ``--epochs`` budget (a separate run per budget: the
learning-rate milestones are fractions of the epochs). Every number comes from one seed
(``--seed``), all of them reported. ``s/epoch`` is the mean over the epochs, ``min s/ep`` the
fastest epoch (less disturbed by other processes on a shared machine).

    OMP_NUM_THREADS=1 python benchmarks/bench_digits_hard.py
    OMP_NUM_THREADS=1 python benchmarks/bench_digits_hard.py --train --epochs 3 6 --image-size 20
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = ("msdnet", "resnet-mc", "densenet-mc", "resnet", "densenet")


def _logreg(train_x, train_y, test_x, test_y, max_iter: int) -> tuple[np.ndarray, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(max_iter=max_iter).fit(train_x, train_y)
    return clf.predict(test_x) == test_y, time.perf_counter() - t0


def _flat(split) -> tuple[np.ndarray, np.ndarray]:
    return split.images.reshape(len(split), -1).numpy() / 255.0, split.labels.numpy()


def data_table(image_size: int, max_iter: int) -> None:
    from msdnet.data import DataConfig, load_data, split_sizes
    from msdnet.data.digits_hard import generate, load_arrays

    print(f"# data (image_size {image_size}, one thread; logistic regression on raw pixels, "
          f"max_iter {max_iter})")
    print("# first load: generate (digits-hard: and write the cache); reload: digits regenerates, "
          "digits-hard reads its cache")
    print(f"{'data set':<12} {'first load s':>12} {'reload s':>8} {'train':>6} {'val':>5} "
          f"{'test':>5} {'logreg test %':>13}")
    with tempfile.TemporaryDirectory() as root:
        for name in ("digits", "digits-hard"):
            cfg = DataConfig(name=name, root=root, image_size=image_size)
            t0 = time.perf_counter()
            bundle = load_data(cfg)                       # generates (and, for digits-hard, caches)
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            bundle = load_data(cfg)                       # digits: regenerates; digits-hard: cache
            read_s = time.perf_counter() - t0
            hits, _ = _logreg(*_flat(bundle.train), *_flat(bundle.test), max_iter)
            n = split_sizes(bundle)
            print(f"{name:<12} {gen_s:>12.2f} {read_s:>8.2f} {n['train']:>6} {n['val']:>5} "
                  f"{n['test']:>5} {100 * hits.mean():>13.1f}")
            if name == "digits-hard":
                t0 = time.perf_counter()
                generate(cfg)
                print(f"{'':<12} generation alone (source digits loaded, no cache): "
                      f"{time.perf_counter() - t0:.2f} s")
                data, _ = load_arrays(cfg)
                d = data.difficulty[data.index("test")]
                edges = np.quantile(d, [0.25, 0.5, 0.75])
                q = np.digitize(d, edges)
                print(f"{'':<12} logreg test % by difficulty quartile (d <= "
                      + ", ".join(f"{e:.2f}" for e in edges) + ", above): "
                      + ", ".join(f"{100 * hits[q == k].mean():.1f}" for k in range(4)))


def _model_config(name: str, image_size: int) -> dict:
    from msdnet.core.config import load_yaml

    model = load_yaml(REPO / "config" / "models" / f"{name}-digits.yaml")
    model["input_size"] = [3, image_size, image_size]
    return model


def _test_accuracy(run_dir: Path, run, model) -> list[float]:
    from msdnet.data import iterate_batches, load_data
    from msdnet.training.train import evaluate, load_checkpoint, load_weights

    load_weights(model, load_checkpoint(run_dir / "checkpoint.pt")["model"], run_dir / "checkpoint.pt")
    return evaluate(model, iterate_batches(load_data(run.data), "test", 256))


def train_table(args) -> None:
    from msdnet.core.config import load_yaml
    from msdnet.models import build
    from msdnet.training.train import make_run_config, train

    torch.set_num_threads(1)
    recipe = load_yaml(REPO / "config" / "recipes" / "digits-hard.yaml")
    rows = []
    data = {**recipe["data"], "image_size": args.image_size, **dict(args.data)}
    print(f"\n# training on digits-hard (" + ", ".join(f"{k} {v}" for k, v in data.items() if k != "name")
          + f"; one thread, seed {args.seed}; test top-1 % per exit)")
    print(f"{'model':<12} {'params':>7} {'epochs':>6} {'s/epoch':>8} {'min s/ep':>8} {'total s':>8}  "
          "test % per exit")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for epochs in args.epochs:
                r = {"data": {**data, "root": str(Path(tmp) / "data")},
                     "train": {**recipe["train"], "epochs": epochs, "seed": args.seed,
                               "progress": "none", "device": "cpu", "eval_every": 0}}
                run = make_run_config(_model_config(name, args.image_size), r)
                out = Path(tmp) / f"{name}-{epochs}"
                t0 = time.perf_counter()
                ckpt = train(run, out, log=lambda *_: None)
                total = time.perf_counter() - t0
                seconds = [m["seconds"] for m in ckpt["metrics"]]
                per_epoch, fastest = float(np.mean(seconds)), float(np.min(seconds))
                model = build(run.model)
                acc = _test_accuracy(out, run, model)
                params = sum(p.numel() for p in model.parameters())
                print(f"{name:<12} {params:>7} {epochs:>6} {per_epoch:>8.2f} {fastest:>8.2f} {total:>8.1f}  "
                      + " ".join(f"{a:5.1f}" for a in acc), flush=True)
                rows.append({"model": name, "params": params, "epochs": epochs,
                             "seconds_per_epoch": round(per_epoch, 3), "min_seconds_per_epoch": round(fastest, 3),
                             "total_seconds": round(total, 1),
                             **{f"test_acc_exit{k + 1}": round(a, 2) for k, a in enumerate(acc)}})
    if args.csv:
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k.startswith("test"), k))
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=[k for k in rows[0]] + [k for k in keys if k not in rows[0]])
            w.writeheader()
            w.writerows(rows)


def _kv(text: str) -> tuple[str, object]:
    import yaml

    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, help="default: the recipe's (config/recipes/digits-hard.yaml)")
    p.add_argument("--max-iter", type=int, default=200, help="logistic regression iterations")
    p.add_argument("--no-data", action="store_true", help="skip the data table")
    p.add_argument("--train", action="store_true", help="also train the small digits networks")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--epochs", nargs="+", type=int, default=[3, 6])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", nargs="*", type=_kv, default=[], metavar="KEY=VALUE",
                   help="data overrides, e.g. hard_train_images=6000")
    p.add_argument("--csv", help="also write the training table here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.image_size is None:
        from msdnet.core.config import load_yaml
        args.image_size = load_yaml(REPO / "config" / "recipes" / "digits-hard.yaml")["data"]["image_size"]
    if not args.no_data:
        data_table(args.image_size, args.max_iter)
    if args.train:
        train_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
