"""Training and evaluation throughput of the paper's models: the plain path against the fast path.

Claim to check: on one H100 the fast path trains the CIFAR-100 anytime MSDNet at least 3x
faster than the plain path; on a CPU the fast path is not slower. Both paths run in the same
process on the same synthetic images (``DataConfig(name='synthetic')``), interleaved
``--repeats`` times; the table reports the best images/s of each (other processes on the
machine can only slow a measurement down) and their ratio.

    .venv/bin/python benchmarks/bench_train.py [--device auto] [--steps 20] [--warmup 5]
        [--repeats 3] [--configs msdnet-anytime-cifar100,resnet110-cifar100]
        [--variants auto|fast,fast_compile,fast_graphs] [--budget-s S] [--threads N] [--quick]

* plain: a textbook loop. A DataLoader over a TensorDataset of the uint8 images on the CPU
  (collated in the main process), crop + flip and normalisation on the CPU, the batch copied
  to the device, a float32 NCHW eager model, the loss read back (``.item()``) every step.
* fast: what ``msdnet train`` runs. The images live on the device, normalised once, and
  batches are views of on-device gathers that crop and flip (``msdnet.data.iterate_batches``);
  precision and memory format from ``msdnet.training.precision.decide`` (CUDA: bf16 autocast +
  channels_last; CPU: float32 + channels_last, measured fastest there);
  ``msdnet.training.train.train_step``, which reads nothing back per step. Variants (``--variants``;
  default: all three on CUDA, ``fast`` alone on a CPU): ``fast`` (eager), ``fast_compile``
  (``train.compile: true``: the step's forward, losses and backward compiled) and
  ``fast_graphs`` (``train.compile_mode: reduce-overhead``: the compiled step replayed as
  CUDA graphs). A compiled variant's first call (compilation) is reported as ``compile_s``
  and is not in its rate.
* eval: every exit's predictions under no_grad (plain: CPU batches copied over, float32;
  fast: ``msdnet.training.train.evaluate`` on device batches with the policy).

Timing: ``--warmup`` steps, then ``--steps`` steps between CUDA events (or the wall clock on a
CPU) after a synchronize. Batch sizes are the recipes' (CIFAR 64, ImageNet 256; eval 256);
``--quick`` uses tiny batches and step counts (about a minute on a 2-core CPU; its numbers
only show that everything runs).

From the measured throughput it estimates the device-hours to train each paper preset on one
such device, per path: every training run of ``config/paper-*.yaml`` (its epochs over the
training images plus one evaluation of the held-out images per epoch, plus one compilation for
a compiled variant). A run whose model config
was measured uses its own throughput; any other uses the harmonic mean of the measured configs
of its input size. The tables go to ``results/benchmarks/bench_train-<device>.{csv,md}`` with
the machine, torch version, code version and command line, rewritten after every config.
``--from-csv FILE[,FILE...]`` re-renders the tables (and the estimate) from such CSVs without
measuring (a config's columns in a later file replace those of an earlier one).

More runs per GPU: ``--packing FILE`` (a ``bench_packing.py`` CSV) adds, per preset, the hours
when the best measured k trainings share the card (preset key ``gpu_slots``): the k = 1 hours
of the path the packing benchmark ran (``fast_graphs`` on CUDA) divided by its gain, best
aggregate images/s / k = 1 aggregate images/s. That is the training images over the aggregate
rate for the measured config; the other configs of the same input size are assumed to gain as
much (a packing measurement of ImageNet-size models, when there is one, applies to those).
ImageNet: ``--configs msdnet-imagenet-k4,resnet50-imagenet`` (224x224, batch 256 as
``config/recipes/imagenet.yaml``) fills the paper-imagenet row.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from machine_info import cpu_model
from msdnet.core.config import load_yaml
from msdnet.data import DataBundle, DataConfig, augment_batch, iterate_batches, load_data, normalize
from msdnet.core.io import code_version, write_text_atomic
from msdnet.models import build
from msdnet.training.precision import decide, maybe_compile, prepare_model
from msdnet.training.train import Objective, TrainConfig, evaluate, resolve_device, train_step

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "config" / "models"
DEFAULT_CONFIGS = [
    "msdnet-anytime-cifar100", "msdnet-anytime-cifar10", "msdnet-budgeted-b4-cifar100",
    "msdnet-budgeted-b6-cifar100", "msdnet-budgeted-b8-cifar100", "msdnet-imagenet-k4",
    "resnet110-cifar100", "densenet-bc-100-k12-cifar100", "resnet50-imagenet",
]
QUICK_CONFIGS = ["msdnet-anytime-cifar100", "msdnet-imagenet-k4", "resnet110-cifar100",
                 "densenet-bc-100-k12-cifar100"]


# The paper presets and their splits: training images, held-out images evaluated every epoch.
PAPER_PRESETS = {
    "paper-cifar100": (45_000, 5_000),
    "paper-cifar10": (45_000, 5_000),
    "paper-imagenet": (1_231_167, 50_000),
}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{cpu_model()} ({torch.get_num_threads()} threads)"
    return f"{name}, torch {torch.__version__}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(run: Callable[[int], None], steps: int, warmup: int, device: torch.device) -> float:
    """Wall time of ``run(steps)`` after ``run(warmup)``, synchronised (CUDA events on a GPU)."""
    if warmup:
        run(warmup)
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run(steps)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    run(steps)
    return time.perf_counter() - t0


def synthetic(model_cfg: dict, images: int, root: str) -> DataBundle:
    c, h, w = model_cfg["input_size"]
    if c != 3 or h != w:
        raise SystemExit(f"synthetic data is square RGB; config has input_size {model_cfg['input_size']}")
    return load_data(DataConfig(name="synthetic", root=root, image_size=h, synthetic_images=images,
                                synthetic_classes=model_cfg["num_classes"], val_size=0, test_size=0.05))


def forever(make: Callable[[int], Iterator]) -> Iterator:
    for epoch in itertools.count():
        yield from make(epoch)


def variants(device: torch.device, which: str) -> dict[str, TrainConfig]:
    """The fast-path variants to measure: name -> the recipe keys ``msdnet train`` would get."""
    all_ = {"fast": TrainConfig(), "fast_compile": TrainConfig(compile=True),
            "fast_graphs": TrainConfig(compile=True, compile_mode="reduce-overhead")}
    if which == "auto":
        names = list(all_) if device.type == "cuda" else ["fast"]
    else:
        names = which.split(",")
        unknown = [n for n in names if n not in all_]
        if unknown:
            raise SystemExit(f"--variants: unknown {unknown[0]!r}; choose from {', '.join(all_)}")
    if device.type != "cuda" and "fast_graphs" in names:
        raise SystemExit("--variants: fast_graphs (CUDA graphs) needs a CUDA device")
    return {n: all_[n] for n in names}


class Paths:
    """The plain step and every fast variant's step of one model config, each as ``run(n)``.

    Models are built once (seed 0) and kept, so a compiled variant compiles once: its first
    (warm-up) call's wall time is reported as ``compile_s``.
    """

    def __init__(self, model_cfg: dict, bundle: DataBundle, device: torch.device, batch: int,
                 eval_batch: int, recipes: dict[str, TrainConfig]) -> None:
        self.bundle, self.device, self.batch = bundle, device, batch
        recipe = TrainConfig()
        self.models, self.opts, self.steps, self.policies = {}, {}, {}, {}
        for path in ["plain", *recipes]:
            torch.manual_seed(0)
            model = build(model_cfg, "model config").to(device)
            if path != "plain":
                policy = decide(device, recipes[path])
                prepare_model(model, policy)
                self.policies[path] = policy
                self.steps[path] = maybe_compile(Objective(model, policy), policy)
            self.models[path] = model
            self.opts[path] = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                              nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
        self.weights = torch.ones(self.models["plain"].num_exits, device=device)
        train = bundle.train
        gen = torch.Generator().manual_seed(0)
        dataset = TensorDataset(train.images, train.labels)
        self.plain_train = forever(lambda e: DataLoader(dataset, batch_size=batch, shuffle=True,
                                                        generator=gen, drop_last=True))
        self.plain_eval = forever(lambda e: DataLoader(dataset, batch_size=eval_batch, drop_last=True))
        self.eval_path = "fast" if "fast" in recipes else next(iter(recipes))   # evaluation is eager
        fmt = self.policies[self.eval_path].memory_format
        self.fast_train = forever(lambda e: iterate_batches(
            bundle, "train", batch, shuffle=True, augment=True, generator=gen, device=device,
            drop_last=True, memory_format=fmt))
        self.fast_eval = forever(lambda e: iterate_batches(bundle, "train", eval_batch, device=device,
                                                           drop_last=True, memory_format=fmt))

    def train_plain(self, n: int) -> None:
        model, opt, b = self.models["plain"], self.opts["plain"], self.bundle
        model.train()
        torch.backends.cudnn.benchmark = False       # the default; the policy turns it on
        for x, y in itertools.islice(self.plain_train, n):
            x = normalize(augment_batch(x, b.crop_pad, b.flip), b.mean, b.std).to(self.device)
            y = y.to(self.device)
            loss = sum(F.cross_entropy(o, y) for o in model(x))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()

    def train_fast(self, path: str) -> Callable[[int], None]:
        def run(n: int) -> None:
            policy = self.policies[path]
            self.models[path].train()
            torch.backends.cudnn.benchmark = policy.cudnn_benchmark
            for x, y, _ in itertools.islice(self.fast_train, n):   # full batches: the compiled step
                train_step(self.steps[path], self.opts[path], x, y, self.weights, policy)
        return run

    @torch.no_grad()
    def eval_plain(self, n: int) -> None:
        model, b = self.models["plain"], self.bundle
        model.eval()
        torch.backends.cudnn.benchmark = False
        for x, y in itertools.islice(self.plain_eval, n):
            y = y.to(self.device)
            for logits in model(normalize(x, b.mean, b.std).to(self.device)):
                (logits.argmax(1) == y).sum().cpu()

    def eval_fast(self, n: int) -> None:
        policy = self.policies[self.eval_path]
        torch.backends.cudnn.benchmark = policy.cudnn_benchmark
        evaluate(self.models[self.eval_path], itertools.islice(self.fast_eval, n), policy)


def measure(name: str, args: argparse.Namespace, device: torch.device, root: str) -> dict | None:
    path = MODELS / f"{name}.yaml"
    if not path.is_file():
        print(f"{name}: no config/models/{name}.yaml yet; skipped", flush=True)
        return None
    model_cfg = load_yaml(path)
    imagenet = model_cfg["input_size"][1] > 64
    batch = (args.imagenet_batch_size or 256) if imagenet else (args.batch_size or 64)
    eval_batch = args.eval_batch_size or 256
    if args.quick:
        batch, eval_batch = (2, 4) if imagenet else (8, 16)
    needed = max(batch, eval_batch) * (args.warmup + args.steps) + 1
    bundle = synthetic(model_cfg, min(max(needed, 64), 2048 if not imagenet else 512), root)
    recipes = variants(device, args.variants)
    paths = Paths(model_cfg, bundle, device, batch, eval_batch, recipes)
    compile_s = {}
    for label in recipes:                  # first calls: compilation, cuDNN autotuning
        t0 = time.perf_counter()
        paths.train_fast(label)(args.warmup)
        synchronize(device)
        compile_s[label] = time.perf_counter() - t0
    rates: dict[str, list[float]] = {}
    runs = {("train", "plain"): paths.train_plain, ("eval", "plain"): paths.eval_plain,
            ("eval", "fast"): paths.eval_fast}
    runs.update({("train", label): paths.train_fast(label) for label in recipes})
    for repeat in range(args.repeats):
        order = list(runs.items())
        for (mode, label), run in order[::-1] if repeat % 2 else order:   # alternate who goes first
            size = batch if mode == "train" else eval_batch
            rates.setdefault(f"{mode}_{label}", []).append(
                size * args.steps / seconds(run, args.steps, args.warmup, device))
    fast_policy = paths.policies[paths.eval_path]
    row = {"config": name, "input": "x".join(map(str, model_cfg["input_size"])), "batch": batch,
           "eval_batch": eval_batch, "fast_policy": f"{fast_policy.describe()['precision']}"
           f"{' channels_last' if fast_policy.channels_last else ''}"}
    for key in sorted(rates, key=lambda k: (k.split("_")[0] != "train", k)):
        row[f"{key}_img_s"] = round(max(rates[key]), 2)
    for label in recipes:
        row[f"train_{label}_ratio"] = round(row[f"train_{label}_img_s"] / row["train_plain_img_s"], 2)
    row["eval_fast_ratio"] = round(row["eval_fast_img_s"] / row["eval_plain_img_s"], 2)
    for label in recipes:
        if recipes[label].compile:
            row[f"{label}_compile_s"] = round(compile_s[label], 1)
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    del paths
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def preset_runs(name: str) -> list[tuple[str, str, int]]:
    """(run name, model config stem, epochs) of every training run of ``config/<name>.yaml``."""
    from msdnet.planning.workflow import Preset, validate_preset    # needs jsonschema; only here

    preset = Preset(validate_preset(load_yaml(REPO / "config" / f"{name}.yaml"), f"config/{name}.yaml"))
    recipe_epochs = int((load_yaml(REPO / preset.cfg["recipe"]).get("train") or {}).get("epochs", 300))
    runs = []
    for model, seed in preset.runs_needed():
        spec = preset.cfg["models"][model]
        sets = {**preset.cfg.get("recipe_set", {}), **spec.get("recipe_set", {})}
        runs.append((f"{model}/seed{seed}", Path(spec["config"]).stem,
                     int(sets.get("train.epochs", recipe_epochs))))
    return runs


def _imagenet_size(input_: str) -> bool:
    return int(str(input_).split("x")[1]) > 64


def packing_gains(packing: list[dict], rows: list[dict]) -> dict[bool, dict]:
    """{imagenet-size?: the best packing of that input size}: its k, MPS, gain over k = 1
    (mps off), the bench_train path it ran and the config it was measured on."""
    inputs = {r["config"]: r["input"] for r in rows}
    out: dict[bool, dict] = {}
    for config in dict.fromkeys(r["config"] for r in packing):
        mine = [r for r in packing if r["config"] == config]
        base = next((r for r in mine if int(r["k"]) == 1 and r["mps"] == "off"), None)
        if base is None:
            continue
        best = max(mine, key=lambda r: float(r["aggregate_img_s"]))
        size = _imagenet_size(inputs[config]) if config in inputs else "imagenet" in config
        gain = float(best["aggregate_img_s"]) / float(base["aggregate_img_s"])
        if size not in out or gain > out[size]["gain"]:
            out[size] = {"k": int(best["k"]), "mps": best["mps"], "gain": gain, "path": best["variant"],
                         "config": config}
    return out


def estimates(rows: list[dict], packing: list[dict] | None = None) -> list[dict]:
    """Device-hours per paper preset from the measured throughput; see the module docstring."""
    by_name = {r["config"]: r for r in rows}
    gains = packing_gains(packing or [], rows)
    paths = [p for p in ("plain", "fast", "fast_compile", "fast_graphs")
             if all(f"train_{p}_img_s" in r for r in rows)]
    out = []
    for preset, (n_train, n_eval) in PAPER_PRESETS.items():
        runs = preset_runs(preset)
        imagenet = preset == "paper-imagenet"
        family = [r for r in rows if _imagenet_size(r["input"]) == imagenet]
        if not family:
            continue
        est = {"preset": preset, "runs": len(runs),
               "epochs": "/".join(map(str, sorted({e for _, _, e in runs}))),
               "measured": ", ".join(sorted({c for _, c, _ in runs if c in by_name})) or "-"}
        for path in paths:
            ev_key = "eval_plain_img_s" if path == "plain" else "eval_fast_img_s"
            hours = 0.0
            for _, stem, epochs in runs:
                rates = [by_name[stem]] if stem in by_name else family
                tr = statistics.harmonic_mean([float(r[f"train_{path}_img_s"]) for r in rates])
                ev = statistics.harmonic_mean([float(r[ev_key]) for r in rates])
                compile_s = statistics.mean([float(r.get(f"{path}_compile_s") or 0) for r in rates])
                hours += (epochs * (n_train / tr + n_eval / ev) + compile_s) / 3600
            est[f"hours_{path}"] = round(hours, 1)
        if packing is not None:
            g = gains.get(imagenet)
            if g and f"hours_{g['path']}" in est:
                est["best_k"] = f"k={g['k']}{' MPS' if g['mps'] == 'on' else ''}, {g['gain']:.2f}x ({g['config']})"
                est["hours_best_k"] = round(est[f"hours_{g['path']}"] / g["gain"], 1)
            else:
                est["best_k"], est["hours_best_k"] = "not measured", ""
        out.append(est)
    return out


def markdown(rows: list[dict], est: list[dict], header: str, packing: list[dict] | None = None) -> str:
    def table(items: list[dict]) -> list[str]:
        cols = list(items[0])
        return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + [
            "| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in items]
    lines = [header, "", "## Throughput (images/s, best of repeats)", ""] + table(rows)
    if est:
        lines += ["", "## Device-hours to train each paper preset on one such device", "",
                  "Every training run of config/<preset>.yaml (its epochs over the training "
                  "images, one evaluation of the held-out images per epoch, one compilation for a compiled "
                  "variant). A run whose model "
                  "config was measured uses its throughput; any other uses the harmonic mean of "
                  "the measured configs of its input size (CIFAR-size or ImageNet-size).", ""]
        if packing is not None:
            lines += ["", "hours_best_k: the best measured number k of trainings sharing the card "
                      "(bench_packing, preset key gpu_slots): the k=1 hours of the path it ran divided "
                      "by its gain (best aggregate images/s over k=1 images/s), the gain of the "
                      "measured config applied to every run of its input size.", ""]
        lines += table(est)
    if packing:
        lines += ["", "## Packing: k concurrent trainings on one device (bench_packing)", ""] + table(
            [{k: v for k, v in r.items() if k != "machine"} for r in packing])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before each measurement")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best is reported")
    ap.add_argument("--configs", default=None, help="comma-separated config/models names")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="training batch of the CIFAR-size configs (default 64, the recipe's)")
    ap.add_argument("--imagenet-batch-size", type=int, default=None,
                    help="training batch of the ImageNet-size configs (default 256, the recipe's)")
    ap.add_argument("--eval-batch-size", type=int, default=None, help="evaluation batch (default 256)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads (default: torch's); on a shared machine 1 avoids OpenMP thrashing")
    ap.add_argument("--variants", default="auto",
                    help="comma-separated fast variants: fast (eager), fast_compile (+ torch.compile), "
                         "fast_graphs (+ compile_mode reduce-overhead: CUDA graphs); auto: all three "
                         "on CUDA, fast alone on a CPU (compiling on a small CPU takes minutes per model)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="stop starting new configs after this many seconds (the tables so far are written)")
    ap.add_argument("--quick", action="store_true", help="tiny batches and step counts (smoke run)")
    ap.add_argument("--out", default=str(REPO / "results" / "benchmarks"), help="output folder")
    ap.add_argument("--from-csv", default=None,
                    help="re-render the tables of measured CSVs (comma-separated; a later file's config "
                         "replaces an earlier one's); measure nothing")
    ap.add_argument("--packing", default=None,
                    help="bench_packing.py CSVs (comma-separated): add the hours with the best k "
                         "trainings per card")
    ap.add_argument("--stem", default=None, help="output file stem (default bench_train-<device>)")
    args = ap.parse_args()
    packing = [r for f in args.packing.split(",") if f for r in read_csv(Path(f))] if args.packing else None
    if args.from_csv:
        srcs = [Path(f) for f in args.from_csv.split(",") if f]
        merged: dict[str, dict] = {}
        for src in srcs:                       # a later file's columns replace an earlier one's
            for r in read_csv(src):
                merged.setdefault(r["config"], {}).update({k: v for k, v in r.items() if v != ""})
        rows = list(merged.values())
        machines = sorted({str(r.get("machine", "an unnamed machine")) for r in rows})
        head = (f"# bench_train on {' and '.join(machines)}, re-rendered from "
                f"{', '.join(s.name for s in srcs)}")
        if packing:
            head += (f"; packing from {args.packing.replace(',', ', ')} on "
                     f"{' and '.join(sorted({str(r.get('machine', '?')) for r in packing}))}")
        print(write_tables(rows, head, Path(args.out), args.stem or srcs[-1].stem, packing))
        return
    if args.quick:
        args.steps, args.warmup, args.repeats = min(args.steps, 3), min(args.warmup, 1), min(args.repeats, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = args.configs.split(",") if args.configs else (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    header = (f"# bench_train on {machine(device)}\n\ncode {code_version()}; command: "
              f"`{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`; steps {args.steps}, "
              f"warmup {args.warmup}, repeats {args.repeats}")
    print(header, flush=True)
    out = Path(args.out)
    stem = args.stem or f"bench_train-{device.type}{'-quick' if args.quick else ''}"
    t_start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            if args.budget_s and time.perf_counter() - t_start > args.budget_s:
                print(f"--budget-s {args.budget_s:g} spent; not measured: {name}", flush=True)
                continue
            row = measure(name, args, device, root)
            if row:
                row["machine"] = machine(device)
                rows.append(row)
                write_tables(rows, header, out, stem, packing)   # after every config: a kill keeps these
    if not rows:
        raise SystemExit("nothing measured")
    print("\n" + write_tables(rows, header, out, stem, packing))
    print(f"wrote {out / stem}.csv and .md")


def _number(v: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]


def write_tables(rows: list[dict], header: str, out: Path, stem: str, packing: list[dict] | None = None) -> str:
    try:
        est = estimates(rows, packing)
    except ImportError as exc:      # a bare GPU image without the workflow's packages
        print(f"no device-hours estimate ({exc}); re-render later with --from-csv", flush=True)
        est = []
    text = markdown(rows, est, header, packing)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / f"{stem}.csv", buf.getvalue())
    write_text_atomic(out / f"{stem}.md", text)
    return text


if __name__ == "__main__":
    main()
