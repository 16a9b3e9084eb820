"""Wall-clock of real early-exit inference against full evaluation, at several budgets.

    .venv/bin/python benchmarks/bench_inference.py [--quick] [--device cpu|cuda] [--threads T]
        [--config config/models/msdnet-anytime-cifar100.yaml] [--checkpoint CKPT]
        [--images N] [--calib N] [--batch-size B] [--ps 0.25 0.5 1 2 4] [--repeat R] [--no-lazy]

The model (default: the CIFAR-100 anytime MSDNet, randomly initialised with seed 0, or the
weights of --checkpoint) classifies N synthetic inputs (standard normal, the model's input
size). Thresholds come from the paper's procedure (``analysis.budgeted.find_thresholds``) on
the model's own confidences over a separate calibration batch, with exit shares q_k ~ p^k for
each --ps value: small p sends most images out early, large p keeps them to the end. The
"budget" column is the resulting average cost on the calibration batch, sum_k q_k C_k (lazy
costs unless --no-lazy).

Per budget: one counted run (MACs measured by the op counter, which must equal the expected
sum_k n_k C_k), then --repeat alternating timed runs of early exit (``run_early_exit``, no
counter) and of full evaluation (``model(x)``, every exit), best of each. Speed-up = full time /
early-exit time; "MAC ratio" = full MACs / measured MACs is the speed-up the MACs promise.
Prints a markdown table and the machine (CPU model, torch version, threads, GPU). Not a test.
--quick: a small run for a 2-core CPU (about a minute), with one torch thread unless --threads
is given: on a small shared machine two OpenMP threads contending with other processes can be
ten times slower than one, which swamps the comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from machine_info import cpu_model
from msdnet.analysis.budgeted import assign_exits, exit_distribution, find_thresholds
from msdnet.analysis.common import confidence_rows
from msdnet.cost import count_costs
from msdnet.inference import run_early_exit, time_full_evaluation
from msdnet.models import build, build_from_file
from msdnet.predict import collect_logits
from msdnet.train import load_checkpoint, resolve_device

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "models" / "msdnet-anytime-cifar100.yaml"


def machine(device: torch.device) -> str:
    parts = [f"CPU: {cpu_model()} ({torch.get_num_threads()} torch threads, "
             f"{os.cpu_count()} logical CPUs)", f"torch {torch.__version__}"]
    if device.type == "cuda":
        parts.append(f"GPU: {torch.cuda.get_device_name(device)}")
    return "; ".join(parts)


def load_model(args: argparse.Namespace, device: torch.device):
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        model = build(ckpt["config"]["model"], str(args.checkpoint))
        model.load_state_dict(ckpt["model"])
        name = str(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = build_from_file(args.config)
        name = f"{Path(args.config).name} (random init)"
    return model.to(device).eval(), name


def batches_of(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return [x[i:i + batch_size] for i in range(0, x.shape[0], batch_size)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="model config (random init)")
    ap.add_argument("--checkpoint", help="use the weights (and config) of this checkpoint instead")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--threads", type=int,
                    help="torch intra-op threads (default: torch's; quick: 1, see --quick)")
    ap.add_argument("--images", type=int, help="timed images (default 2048; GPU 8192; quick 256)")
    ap.add_argument("--calib", type=int, help="calibration images (default 1024; quick 256)")
    ap.add_argument("--batch-size", type=int, help="default 128 (GPU 512)")
    ap.add_argument("--ps", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0],
                    help="p of the exit shares q_k ~ p^k, one budget each")
    ap.add_argument("--repeat", type=int, help="timed repetitions per budget, best reported (default 3; quick 2)")
    ap.add_argument("--no-lazy", action="store_true", help="turn lazy evaluation off")
    ap.add_argument("--quick", action="store_true", help="small run for a 2-core CPU (~1 minute)")
    args = ap.parse_args()

    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    n_images = args.images or (256 if args.quick else 8192 if gpu else 2048)
    n_calib = args.calib or (256 if args.quick else 1024)
    batch_size = args.batch_size or (512 if gpu else 128)
    repeat = args.repeat or (2 if args.quick else 3)
    lazy = not args.no_lazy

    model, name = load_model(args, device)
    k = model.num_exits
    gen = torch.Generator().manual_seed(1)
    calib = torch.randn(n_calib, *model.input_size, generator=gen).to(device)
    x = torch.randn(n_images, *model.input_size, generator=gen).to(device)
    batches = batches_of(x, batch_size)
    costs = np.array([c.macs for c in count_costs(model, lazy=lazy)], dtype=np.int64)
    full_macs = count_costs(model)[-1].macs

    t0 = time.perf_counter()
    logits, _, _ = collect_logits(model, [(b, torch.zeros(len(b), dtype=torch.long), torch.arange(len(b)))
                                          for b in batches_of(calib, batch_size)])
    conf = np.stack([confidence_rows(logits[e], "max_prob") for e in range(k)])
    calib_s = time.perf_counter() - t0

    # warm-up (untimed): kernels, allocator, every batch shape of the full forward
    time_full_evaluation(model, batches[:1])
    run_early_exit(model, batches[:1], np.full(k - 1, np.inf), lazy=lazy, count_macs=False, exit_macs=costs)

    rows = []
    for p in args.ps:
        theta = find_thresholds(conf, exit_distribution(p, k))
        calib_exits = assign_exits(conf, theta)
        budget = float(np.bincount(calib_exits, minlength=k) @ costs) / n_calib
        counted = run_early_exit(model, batches, theta, lazy=lazy, exit_macs=costs)
        assert counted.measured_macs == counted.expected_macs, (counted.measured_macs, counted.expected_macs)
        ee_s, full_s = math.inf, math.inf
        for _ in range(repeat):
            ee_s = min(ee_s, run_early_exit(model, batches, theta, lazy=lazy, count_macs=False,
                                            exit_macs=costs).seconds)
            full_s = min(full_s, time_full_evaluation(model, batches).seconds)
        rows.append({
            "p": p, "budget": budget, "measured": counted.measured_macs_per_image,
            "expected": counted.expected_macs_per_image, "mean_exit": counted.mean_exit,
            "ee_ips": n_images / ee_s, "full_ips": n_images / full_s, "speedup": full_s / ee_s,
            "mac_ratio": full_macs / counted.measured_macs_per_image,
        })

    print(f"model: {name}, {k} exits, C_1..C_K = {', '.join(f'{c / 1e6:.2f}' for c in costs)} MMACs "
          f"({'lazy' if lazy else 'no lazy'} evaluation); full evaluation {full_macs / 1e6:.2f} MMACs")
    print(f"device: {device}; {machine(device)}")
    print(f"{n_images} synthetic images (batch {batch_size}), thresholds from {n_calib} calibration images "
          f"({calib_s:.1f} s), best of {repeat}")
    print()
    print("| p | budget (MMACs/img, calib.) | measured MMACs/img | expected MMACs/img | mean exit "
          "| early-exit img/s | full img/s | speed-up | MAC ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['p']:g} | {r['budget'] / 1e6:.2f} | {r['measured'] / 1e6:.2f} | {r['expected'] / 1e6:.2f} "
              f"| {r['mean_exit']:.2f} | {r['ee_ips']:.1f} | {r['full_ips']:.1f} | {r['speedup']:.2f}x "
              f"| {r['mac_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
