"""``msdnet infer``: real early-exit inference of a trained checkpoint on a data split.

Thresholds (exactly one source):
  --val VAL.npz --p P          the paper's procedure (``analysis.budgeted``) on a held-out split's
                               recorded logits, exit shares q_k ~ P^k
  --val VAL.npz --budget MACS  the paper's procedure at the p whose validation average cost is the
                               largest not above MACS (``BudgetedEvaluator.at_budget``)
  --thresholds T1 .. T(K-1)    given: one per exit but the last (the last exit takes every image
                               left); "inf" = nobody leaves at that exit, "-inf" = everybody does

Costs are those of the run's evaluation mode: with lazy evaluation (the default for MSDNet;
``--no-lazy`` to turn it off) the per-exit costs C_k are ``count_costs(model, lazy=True)``, so
--budget is a budget for lazy evaluation. The validation file must hold the val split, come from
the same checkpoint (its ``checkpoint_sha256`` and ``config_hash``, when recorded, must match) and
from the checkpoint's data split (dataset, split_seed, data config); --split must be another split.
--set data.KEY=VALUE may change only where the data lives (root, imagenet_dir; --set-data KEY=VALUE: the deprecated spelling).

Engines (--engine): ``reference`` is ``msdnet.inference.early_exit.run_early_exit`` (host decision and
``state.select`` per exit, MACs counted by the op counter); ``fast`` is ``msdnet.inference.fast_exit``'s
ExitEngine (bucketed fixed-size stages replayed as CUDA graphs, decisions and compaction on the
device, one host sync per exit; on the CPU the same stages run eagerly). ``auto`` (the default):
fast on CUDA, reference elsewhere. Both give the same exits and predictions (tests/test_fast_exit.py).

Runs, in order: one warm-up batch (untimed), a first run (reference: MACs measured with the op
counter; per-image results), then --repeat times: a timed full evaluation (``model(x)``, every
exit) and a timed early-exit run without the counter; the best time of each is reported. Prints
accuracy, mean exit (1-based), the share of images per exit, MACs per image measured (reference)
or executed including the bucket padding (fast) and expected (sum_k n_k C_k / N), wall-clock per
image and the speed-up over full evaluation.

--json prints one object: checkpoint, split, n_images, batch_size, device, lazy, confidence,
threshold_source {mode: "p" | "budget" | "given", p, budget, val, val_avg_macs, val_accuracy},
thresholds (K values, the last "-inf"), exit_macs, exit_counts, exit_fractions, accuracy,
mean_exit, measured_macs_per_image (null with the fast engine), expected_macs_per_image,
full_macs_per_image, seconds_per_image, full_seconds_per_image, full_accuracy, speedup, engine,
executed_macs_per_image (fast: MACs run including padding; reference: the measured ones).
--csv OUT.csv writes one row per image: sample_id, label, exit (1-based), prediction,
confidence, correct.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from ..core.errors import MsdnetError
from ._options import add_data_set, data_overrides
from ..inference.predictions import LOCATION_KEYS, check_split, load
from ..inference.scores import CONFIDENCES, json_list, json_number

HELP = "real early-exit inference of a checkpoint with budgeted-batch thresholds (wall-clock, MACs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt or the --final file written by msdnet train")
    p.add_argument("--val", metavar="VAL.npz",
                   help="held-out predictions of this checkpoint (msdnet predict) to derive thresholds")
    p.add_argument("--p", type=float, metavar="P", help="with --val: exit shares q_k ~ P^k (the paper's sweep)")
    p.add_argument("--budget", type=float, metavar="MACS",
                   help="with --val: target average MACs per image under this run's evaluation mode "
                        "(lazy unless --no-lazy); the validation cost never exceeds it")
    p.add_argument("--thresholds", type=float, nargs="*", metavar="T",
                   help="given thresholds, exactly one per exit but the last (K-1 values; the last exit "
                        "takes every image left); inf = nobody leaves there, -inf = everybody does")
    p.add_argument("--split", choices=["val", "test"], default="test", help="split to classify (default test)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="images per batch (default: %(default)s); the fast engine buckets within it")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--confidence", choices=CONFIDENCES, default="max_prob",
                   help="confidence measure (default max_prob, the paper's)")
    p.add_argument("--no-lazy", action="store_true", help="turn lazy evaluation off")
    p.add_argument("--engine", choices=["auto", "fast", "reference"], default="auto",
                   help="fast: bucketed stages replayed as CUDA graphs, decisions on the device, one "
                        "host sync per exit (eager on CPU); reference: host decision and select per "
                        "exit, MACs counted by the op counter; auto (default): fast on CUDA, else reference")
    p.add_argument("--repeat", type=int, default=1, help="timed repetitions; the best is reported")
    add_data_set(p)
    p.add_argument("--allow-unfinished", action="store_true", help="use a run that has not finished training")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--out", "--csv", dest="out", metavar="OUT.csv",
                   help="write the per-image results as CSV (--csv: deprecated spelling)")


def _check_args(args: argparse.Namespace) -> None:
    given = args.thresholds is not None
    if given and (args.val or args.p is not None or args.budget is not None):
        raise MsdnetError("give either --thresholds or --val with --p / --budget, not both")
    if not given:
        if not args.val:
            raise MsdnetError("give --val VAL.npz with --p P or --budget MACS, or --thresholds T1 ... T(K-1)")
        if (args.p is None) == (args.budget is None):
            raise MsdnetError("with --val give exactly one of --p P and --budget MACS")
        if args.p is not None and (math.isnan(args.p) or args.p < 0):
            raise MsdnetError(f"--p must be >= 0, got {args.p}")
    elif args.p is not None or args.budget is not None:
        raise MsdnetError("--p and --budget need --val")
    if args.batch_size < 1:
        raise MsdnetError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.repeat < 1:
        raise MsdnetError(f"--repeat must be >= 1, got {args.repeat}")


def _thresholds_from_val(args: argparse.Namespace, model, num_classes: int | None, digest: str,
                         exit_macs: np.ndarray, ckpt: dict, data_cfg) -> tuple[np.ndarray, dict]:
    from ..evaluation.analysis.budgeted import BudgetedEvaluator

    val = load(args.val)
    if val.num_exits != model.num_exits:
        raise MsdnetError(f"{args.val} has {val.num_exits} exits but the checkpoint's model has "
                          f"{model.num_exits}; record it from this checkpoint with msdnet predict")
    n_classes = num_classes
    if n_classes is not None and val.num_classes != n_classes:
        raise MsdnetError(f"{args.val} has {val.num_classes} classes but the checkpoint's model has "
                          f"{n_classes}; record it from this checkpoint with msdnet predict")
    recorded = val.meta.get("checkpoint_sha256") if isinstance(val.meta, dict) else None
    if recorded and recorded != digest:
        raise MsdnetError(f"{args.val} was recorded from another checkpoint (sha256 {recorded[:12]}... != "
                          f"{digest[:12]}...); re-run msdnet predict on {args.checkpoint}")
    if isinstance(val.meta, dict) and val.meta.get("split") == args.split:
        raise MsdnetError(f"{args.val} holds the '{args.split}' split, the split being classified; "
                          "thresholds must come from a held-out split (msdnet predict --splits val)")
    check_split(val, "val", args.val)
    meta = val.meta if isinstance(val.meta, dict) else {}
    if "config_hash" in meta and meta["config_hash"] != ckpt.get("config_hash"):
        raise MsdnetError(f"{args.val} was recorded from a run with another config (config_hash "
                          f"{meta['config_hash']} != {ckpt.get('config_hash')}); re-run msdnet predict on "
                          f"{args.checkpoint}")
    want = {"dataset": data_cfg.name, "split_seed": data_cfg.split_seed}
    want.update({f"data.{k}": v for k, v in asdict(data_cfg).items() if k not in LOCATION_KEYS})
    have = {k: meta[k] for k in ("dataset", "split_seed") if k in meta}
    if isinstance(meta.get("data"), dict):
        have.update({f"data.{k}": v for k, v in meta["data"].items() if k not in LOCATION_KEYS})
    for key, value in have.items():
        if key in want and want[key] != value:
            raise MsdnetError(f"{args.val} was recorded on other data than {args.checkpoint} uses ({key}: "
                              f"{value!r} vs {want[key]!r}); re-run msdnet predict on {args.checkpoint}")
    if len(val) == 0:
        raise MsdnetError(f"{args.val} holds no images; thresholds need a validation split")
    # the run's own cost model (lazy or not), so that --budget is a budget for this run
    val = replace(val, exit_macs=exit_macs.astype(np.float64))
    ev = BudgetedEvaluator(val, None, args.confidence, val_name=args.val)
    point = ev.point(args.p) if args.p is not None else ev.at_budget(args.budget)
    source = {"mode": "p" if args.p is not None else "budget", "p": json_number(point.p),
              "budget": json_number(args.budget), "val": str(args.val),
              "val_avg_macs": json_number(point.val_avg_macs), "val_accuracy": json_number(point.val_accuracy)}
    return point.thresholds, source


def run(args: argparse.Namespace) -> int:
    # torch and the analyses: imported when the command runs (`msdnet --help` stays torch-free)
    from ..core.io import sha256_file, terminal_progress
    from ..data import iterate_batches, load_data
    from ..evaluation.analysis.common import dumps, write_csv
    from ..inference.early_exit import normalize_thresholds, run_early_exit, speedup, time_full_evaluation
    from ..inference.fast_exit import ExitEngine
    from ..inference.predict import checkpoint_data_config, model_from_checkpoint
    from ..models.cost import count_costs
    from ..training.checkpoint import check_model_fits_data, load_checkpoint
    from ..training.gpu_slots import resolve_device

    _check_args(args)
    ckpt = load_checkpoint(args.checkpoint)
    if not ckpt.get("finished") and not args.allow_unfinished:
        raise MsdnetError(f"{args.checkpoint}: training stopped after epoch {ckpt.get('epoch')}; "
                          "re-run `msdnet train` to finish it (or pass --allow-unfinished)")
    config = ckpt["config"]
    data_cfg = checkpoint_data_config(ckpt, args.checkpoint, data_overrides(args.set))
    dev = resolve_device(args.device)
    model = model_from_checkpoint(ckpt, args.checkpoint)
    model.to(dev).eval()
    lazy = not args.no_lazy
    exit_macs = np.array([c.macs for c in count_costs(model, lazy=lazy)], dtype=np.int64)

    if args.thresholds is not None:
        k = model.num_exits
        if len(args.thresholds) != k - 1:
            raise MsdnetError(f"--thresholds got {len(args.thresholds)} values but the model has {k} exits; "
                              f"give {k - 1}, one per exit but the last (it takes every image left)")
        if any(math.isnan(t) for t in args.thresholds):
            raise MsdnetError("--thresholds must not be NaN")
        theta = normalize_thresholds(args.thresholds, k)
        source: dict[str, Any] = {"mode": "given", "p": None, "budget": None, "val": None,
                                  "val_avg_macs": None, "val_accuracy": None}
    else:
        theta, source = _thresholds_from_val(args, model, config["model"].get("num_classes"),
                                             sha256_file(args.checkpoint), exit_macs, ckpt, data_cfg)

    bundle = load_data(data_cfg)
    check_model_fits_data(model, config["model"], bundle, str(args.checkpoint), f"{args.checkpoint} [data]")
    if args.split == "val" and bundle.val is None:
        raise MsdnetError(f"{args.checkpoint}: the run was trained without a held-out split "
                          "(data.val_size: 0), so there is no val split to classify")

    def batches():
        return iterate_batches(bundle, args.split, args.batch_size, device=dev)

    engine_name = args.engine if args.engine != "auto" else ("fast" if dev.type == "cuda" else "reference")
    kw = dict(lazy=lazy, confidence=args.confidence, device=dev, exit_macs=exit_macs)
    if engine_name == "fast":
        engine = ExitEngine(model, max_batch=args.batch_size, **kw)

        def early_exit(batches_, count_macs):
            return engine.run(batches_, theta)
    else:
        def early_exit(batches_, count_macs):
            return run_early_exit(model, batches_, theta, count_macs=count_macs, **kw)
    warm = list(itertools.islice(batches(), 1))
    time_full_evaluation(model, warm, device=dev)
    early_exit(warm, False)
    n_batches = -(-len(getattr(bundle, args.split)) // args.batch_size)
    result = early_exit(terminal_progress(batches(), n_batches, f"infer {args.split}"), True)
    if result.n_images == 0:
        raise MsdnetError(f"the '{args.split}' split holds no images")
    full_s, ee_s, full = math.inf, math.inf, None
    for _ in range(args.repeat):
        f = time_full_evaluation(model, batches(), device=dev)
        if f.seconds < full_s:
            full_s, full = f.seconds, f
        ee_s = min(ee_s, early_exit(batches(), False).seconds)
    result.seconds = ee_s
    assert full is not None
    executed = getattr(result, "executed_macs_per_image", result.measured_macs_per_image)

    if args.out:
        write_csv(result.table(), args.out)
    summary = {
        "checkpoint": str(args.checkpoint), "split": args.split, "n_images": result.n_images,
        "batch_size": args.batch_size, "device": str(dev), "lazy": lazy, "confidence": args.confidence,
        "threshold_source": source, "thresholds": json_list(result.thresholds),
        "exit_macs": json_list(result.exit_macs), "exit_counts": json_list(result.exit_counts),
        "exit_fractions": json_list(result.exit_fractions), "accuracy": json_number(result.accuracy),
        "mean_exit": json_number(result.mean_exit),
        "measured_macs_per_image": json_number(result.measured_macs_per_image),
        "expected_macs_per_image": json_number(result.expected_macs_per_image),
        "full_macs_per_image": full.macs_per_image,
        "seconds_per_image": json_number(result.seconds_per_image),
        "full_seconds_per_image": json_number(full.seconds_per_image),
        "full_accuracy": json_number(full.accuracy), "speedup": json_number(speedup(result, full)),
        "engine": engine_name, "executed_macs_per_image": json_number(executed),
    }
    if args.json:
        print(dumps(summary))
        return 0
    mode = "lazy evaluation" if lazy else "no lazy evaluation"
    print(f"{args.checkpoint}: '{args.split}' split, {result.n_images} images, batch {args.batch_size}, "
          f"{dev}, {mode}, {engine_name} engine")
    if source["mode"] == "p":
        how = f"from {args.val} at p = {source['p']}"
    elif source["mode"] == "budget":
        how = f"from {args.val} at budget {args.budget / 1e6:,.4g} MMACs (p = {source['p']})"
    else:
        how = "given"
    print(f"thresholds ({args.confidence}, {how}): " + " ".join(f"{t:.6g}" for t in result.thresholds))
    if source["mode"] != "given":
        print(f"  validation: {source['val_avg_macs'] / 1e6:,.4f} MMACs per image, "
              f"top-1 {source['val_accuracy']:.2f} %")
    print(f"{'exit':>4}  {'C_k (MMACs)':>14}  {'images':>7}  {'share':>7}")
    for k in range(result.num_exits):
        print(f"{k + 1:>4}  {result.exit_macs[k] / 1e6:>14,.4f}  {int(result.exit_counts[k]):>7}  "
              f"{100 * result.exit_fractions[k]:>6.2f}%")
    print(f"accuracy: top-1 {result.accuracy:.2f} %  (full evaluation, last exit: {full.accuracy:.2f} %)")
    print(f"mean exit: {result.mean_exit:.3f}")
    if engine_name == "fast":
        print(f"MMACs per image: expected {result.expected_macs_per_image / 1e6:,.4f}, executed with "
              f"bucket padding {executed / 1e6:,.4f} (full evaluation: {full.macs_per_image / 1e6:,.4f})")
    else:
        print(f"MMACs per image: measured {result.measured_macs_per_image / 1e6:,.4f}, expected "
              f"{result.expected_macs_per_image / 1e6:,.4f} (full evaluation: "
              f"{full.macs_per_image / 1e6:,.4f})")
    print(f"wall-clock per image: early exit {result.seconds_per_image * 1e3:.4f} ms, full evaluation "
          f"{full.seconds_per_image * 1e3:.4f} ms; speed-up {speedup(result, full):.2f}x")
    return 0
