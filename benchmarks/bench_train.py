"""Training and evaluation throughput of the paper's models: the plain path against the fast path.

Claim to check: on one H100 the fast path trains the CIFAR-100 anytime MSDNet at least 3x
faster than the plain path; on a CPU the fast path is not slower. Both paths run in the same
process on the same synthetic images (``DataConfig(name='synthetic')``), interleaved
``--repeats`` times; the table reports the best images/s of each (other processes on the
machine can only slow a measurement down) and their ratio.

    .venv/bin/python benchmarks/bench_train.py [--device auto] [--steps 20] [--warmup 5]
        [--repeats 3] [--configs msdnet-anytime-cifar100,resnet110-cifar100] [--compile auto]
        [--threads N] [--quick]

* plain: a textbook loop. A DataLoader over a TensorDataset of the uint8 images on the CPU
  (collated in the main process), crop + flip and normalisation on the CPU, the batch copied
  to the device, a float32 NCHW eager model, the loss read back (``.item()``) every step.
* fast: what ``msdnet train`` runs. The uint8 images live on the device and batches are
  index slices augmented there (``msdnet.data.iterate_batches``); precision and memory format
  from ``msdnet.precision.decide`` (CUDA: bf16 autocast + channels_last; CPU: float32 +
  channels_last, measured fastest there); ``msdnet.train.train_step``, which reads nothing back per step.
  ``--compile`` (default: on CUDA) adds a third path, ``fast_compile``: fast + ``torch.compile``
  (``train.compile: true`` in a recipe).
* eval: every exit's predictions under no_grad (plain: CPU batches copied over, float32;
  fast: ``msdnet.train.evaluate`` on device batches with the policy).

Timing: ``--warmup`` steps, then ``--steps`` steps between CUDA events (or the wall clock on a
CPU) after a synchronize. Batch sizes are the recipes' (CIFAR 64, ImageNet 256; eval 256);
``--quick`` uses tiny batches and step counts (about a minute on a 2-core CPU; its numbers
only show that everything runs).

From the fast path's measured throughput it estimates the device-hours to reproduce each
paper preset on one such device (see ``PRESETS``): one run per model config of the preset in
``config/models/``, each training ``epochs`` over the training images plus one evaluation of
the held-out images per epoch. A config measured here uses its own throughput; any other uses
the harmonic mean of the measured configs of its preset (CIFAR: the MSDNets, ResNet-110,
DenseNet-BC-100; ImageNet: the ImageNet MSDNets). The table goes to
``results/benchmarks/bench_train-<device>.{csv,md}`` with the machine, torch version, code
version and command line.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from msdnet.config import load_yaml
from msdnet.data import DataBundle, DataConfig, augment_batch, iterate_batches, load_data, normalize
from msdnet.io import code_version, write_text_atomic
from msdnet.models import build
from msdnet.precision import Policy, decide, grad_scaler, maybe_compile, prepare_model
from msdnet.train import TrainConfig, evaluate, resolve_device, train_step

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "config" / "models"
DEFAULT_CONFIGS = [
    "msdnet-anytime-cifar100", "msdnet-anytime-cifar10", "msdnet-budgeted-b4-cifar100",
    "msdnet-budgeted-b6-cifar100", "msdnet-budgeted-b8-cifar100", "msdnet-imagenet-k4",
    "resnet110-cifar100", "densenet-bc-100-k12-cifar100",
]
QUICK_CONFIGS = ["msdnet-anytime-cifar100", "msdnet-imagenet-k4", "resnet110-cifar100",
                 "densenet-bc-100-k12-cifar100"]


@dataclass(frozen=True)
class Preset:
    """One paper preset: which model configs it trains, for how long, on how many images."""

    name: str
    patterns: tuple[str, ...]     # globs in config/models: one training run per match
    epochs: int
    train_images: int
    eval_images: int              # held-out images evaluated after every epoch


PRESETS = [
    # CIFAR-10 and CIFAR-100: 50,000 training images, 5,000 held out (config/recipes/cifar.yaml).
    Preset("CIFAR-10/100", ("*-cifar10.yaml", "*-cifar100.yaml"), 300, 45_000, 5_000),
    # ImageNet: 1,281,167 training images, 50,000 held out (config/recipes/imagenet.yaml).
    Preset("ImageNet", ("*-imagenet*.yaml",), 90, 1_231_167, 50_000),
]


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "unknown CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name += f" ({torch.get_num_threads()} threads)"
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


class Paths:
    """The plain and fast train/eval steps of one model config, each callable as ``run(n)``."""

    def __init__(self, model_cfg: dict, bundle: DataBundle, device: torch.device, batch: int,
                 eval_batch: int, policy: Policy) -> None:
        self.bundle, self.device, self.policy = bundle, device, policy
        recipe = TrainConfig()
        self.models, self.opts = {}, {}
        for path in ("plain", "fast"):
            torch.manual_seed(0)
            model = build(model_cfg, "model config").to(device)
            if path == "fast":
                prepare_model(model, policy)
            self.models[path] = model
            self.opts[path] = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                              nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
        self.net = maybe_compile(self.models["fast"], policy)
        self.scaler = grad_scaler(policy)
        self.weights = torch.ones(self.models["fast"].num_exits, device=device)
        train = bundle.train
        gen = torch.Generator().manual_seed(0)
        dataset = TensorDataset(train.images, train.labels)
        self.plain_train = forever(lambda e: DataLoader(dataset, batch_size=batch, shuffle=True,
                                                        generator=gen, drop_last=True))
        self.plain_eval = forever(lambda e: DataLoader(dataset, batch_size=eval_batch, drop_last=True))
        self.fast_train = forever(lambda e: iterate_batches(
            bundle, "train", batch, shuffle=True, augment=True, generator=gen, device=device, drop_last=True))
        self.fast_eval = forever(lambda e: iterate_batches(bundle, "train", eval_batch, device=device,
                                                           drop_last=True))

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

    def train_fast(self, n: int) -> None:
        self.models["fast"].train()
        torch.backends.cudnn.benchmark = self.policy.cudnn_benchmark
        for x, y, _ in itertools.islice(self.fast_train, n):
            train_step(self.net, self.opts["fast"], x, y, self.weights, self.policy, self.scaler)

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
        torch.backends.cudnn.benchmark = self.policy.cudnn_benchmark
        evaluate(self.models["fast"], itertools.islice(self.fast_eval, n), self.policy)


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
    policies = {"fast": decide(device, TrainConfig())}
    if args.compile == "yes" or (args.compile == "auto" and device.type == "cuda"):
        policies["fast_compile"] = decide(device, TrainConfig(compile=True))
    rates: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        for label, policy in policies.items():
            paths = Paths(model_cfg, bundle, device, batch, eval_batch, policy)
            runs = {"train": (paths.train_plain, paths.train_fast), "eval": (paths.eval_plain, paths.eval_fast)}
            for mode, (plain, fast) in runs.items():
                size = batch if mode == "train" else eval_batch
                order = [("plain", plain)] * (label == "fast") + [(label, fast)]
                for path, run in order[::-1] if repeat % 2 else order:   # alternate who goes first
                    rate = size * args.steps / seconds(run, args.steps, args.warmup, device)
                    rates.setdefault(f"{mode} {path}", []).append(rate)
            del paths
    row = {"config": name, "input": "x".join(map(str, model_cfg["input_size"])), "batch": batch,
           "eval_batch": eval_batch, "fast_policy": " ".join(f"{k}={v}" for k, v in policies["fast"].describe().items())}
    for key, values in rates.items():
        row[f"{key.replace(' ', '_')}_img_s"] = round(max(values), 2)
    for mode in ("train", "eval"):
        for label in policies:
            row[f"{mode}_{label}_ratio"] = round(row[f"{mode}_{label}_img_s"] / row[f"{mode}_plain_img_s"], 2)
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def estimates(rows: list[dict]) -> list[dict]:
    """Device-hours per preset from the fast (and plain) throughput; see the module docstring."""
    by_name = {r["config"]: r for r in rows}
    out = []
    for preset in PRESETS:
        configs = sorted({p.stem for pat in preset.patterns for p in MODELS.glob(pat)})
        measured = [by_name[c] for c in configs if c in by_name]
        if not configs or not measured:
            continue
        est = {"preset": preset.name, "runs": len(configs), "epochs": preset.epochs,
               "train_images": preset.train_images, "eval_images": preset.eval_images,
               "measured": ", ".join(r["config"] for r in measured)}
        for path in [p for p in ("plain", "fast", "fast_compile") if f"train_{p}_img_s" in rows[0]]:
            hours = 0.0
            for c in configs:
                rates = [by_name[c]] if c in by_name else measured
                tr = statistics.harmonic_mean([r[f"train_{path}_img_s"] for r in rates])
                ev = statistics.harmonic_mean([r[f"eval_{path}_img_s"] for r in rates])
                hours += preset.epochs * (preset.train_images / tr + preset.eval_images / ev) / 3600
            est[f"hours_{path}"] = round(hours, 1)
        out.append({**est, "_configs": configs})
    return out


def markdown(rows: list[dict], est: list[dict], header: str) -> str:
    def table(items: list[dict]) -> list[str]:
        cols = list(items[0])
        return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + [
            "| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in items]
    lines = [header, "", "## Throughput (images/s, best of repeats)", ""] + table(rows)
    if est:
        lines += ["", "## Device-hours to reproduce each preset on one such device", "",
                  "One run per matching config in config/models; configs not measured here use "
                  "the harmonic mean of the measured configs of their preset.", ""]
        lines += table([{k: v for k, v in e.items() if not k.startswith("_")} for e in est])
        for e in est:
            lines += ["", f"Runs assumed for {e['preset']}: " + ", ".join(e["_configs"]) + "."]
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
    ap.add_argument("--compile", choices=("auto", "yes", "no"), default="auto",
                    help="also measure fast + torch.compile (auto: on CUDA only; compiling on a "
                         "small CPU takes minutes per model)")
    ap.add_argument("--quick", action="store_true", help="tiny batches and step counts (smoke run)")
    ap.add_argument("--out", default=str(REPO / "results" / "benchmarks"), help="output folder")
    args = ap.parse_args()
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
    with tempfile.TemporaryDirectory() as root:
        rows = [r for r in (measure(n, args, device, root) for n in names) if r]
    if not rows:
        raise SystemExit("nothing measured")
    est = estimates(rows)
    text = markdown(rows, est, header)
    print("\n" + text)
    out = Path(args.out)
    stem = f"bench_train-{device.type}{'-quick' if args.quick else ''}"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / f"{stem}.csv", buf.getvalue())
    write_text_atomic(out / f"{stem}.md", text)
    print(f"wrote {out / stem}.csv and .md")


if __name__ == "__main__":
    main()
