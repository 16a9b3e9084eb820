"""Wall-clock of early-exit inference (reference path and fast engine) against full evaluation.

    .venv/bin/python benchmarks/bench_inference.py [--quick] [--device cpu|cuda|auto] [--threads T]
        [--config config/models/msdnet-anytime-cifar100.yaml] [--checkpoint CKPT]
        [--images N] [--calib N] [--batch-size B] [--ps 0.25 0.5 1 2 4] [--repeat R] [--no-lazy]
        [--latency-images M] [--compile] [--time-budget S] [--csv OUT.csv]

The model (default: the CIFAR-100 anytime MSDNet, randomly initialised with seed 0, or the
weights of --checkpoint) classifies N synthetic inputs (standard normal, the model's input
size). Thresholds come from the paper's procedure (``analysis.budgeted.find_thresholds``) on
the model's own confidences over a separate calibration batch, with exit shares q_k ~ p^k for
each --ps value: small p sends most images out early, large p keeps them to the end. The
"budget" is the resulting average cost on the calibration batch, sum_k q_k C_k (lazy costs
unless --no-lazy), also given as a share of the full network's C_K.

Throughput at batch B (one row per budget; images/s, best of --repeat):
  full eager      ``model(x)``, every exit (``inference.time_full_evaluation``)
  full graphed    the same forward captured once per batch size as a CUDA graph and replayed
                  (CUDA only): the launch-free baseline
  full compiled   --compile (CUDA, measured last as compiling takes a while): the forward
                  compiled by torch.compile (default mode, fused kernels), then captured; the
                  fast engine's times above are compared with it in an extra table
  reference EE    ``inference.run_early_exit`` (host decision and ``state.select`` per exit)
  fast EE         ``fast_exit.ExitEngine`` (bucketed stages as CUDA graphs, one sync per exit;
                  eager on the CPU)
"speed-up" = the best full evaluation's time / the fast engine's time; "MAC ratio" = C_K / the
expected MACs per image, the speed-up the MACs promise; "executed" adds the bucket padding.

Latency at batch 1 (the anytime setting): for every exit k, thresholds that send every image
out at exit k (+inf before it, -inf at it); t_k = wall-clock per image of the fast engine (bucket
1) and of the reference path. Table: exit k, C_k / C_K, t_k / t_K, and their ratio (the issue's
target: <= 1.5 on a GPU). Also batch-1 full evaluation (eager, graphed).

With random weights the accuracy is meaningless, so the budget at which accuracy comes within 1
point of the last exit cannot be read here; the budgets are reported as MAC shares instead.

Prints markdown tables (each as soon as its part is done) and the machine; --csv writes every
row (column ``table``: throughput or latency). --time-budget S (default 150 s; quick 50 s) stops
starting new measurements after S seconds (throughput rows only in the first 60 % of it; the
tables say what was skipped). --quick: a small run for a 2-core CPU (under a minute), one torch
thread unless --threads is given (on a small shared machine two OpenMP threads contending with
other processes can be ten times slower than one). Not a test.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from machine_info import cpu_model
from msdnet.evaluation.analysis.budgeted import assign_exits, exit_distribution, find_thresholds
from msdnet.evaluation.analysis.common import confidence_rows
from msdnet.models.cost import count_costs
from msdnet.inference.fast_exit import ExitEngine
from msdnet.inference.early_exit import run_early_exit, time_full_evaluation
from msdnet.models import build, build_from_file
from msdnet.inference.predict import collect_logits
from msdnet.training.train import load_checkpoint, resolve_device

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "models" / "msdnet-anytime-cifar100.yaml"


def machine(device: torch.device) -> str:
    parts = [f"CPU: {cpu_model()} ({torch.get_num_threads()} torch threads, "
             f"{os.cpu_count()} logical CPUs)", f"torch {torch.__version__}"]
    if device.type == "cuda":
        parts.append(f"GPU: {torch.cuda.get_device_name(device)} (cuDNN TF32 "
                     f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'})")
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


class GraphedFull:
    """Full evaluation (last exit's argmax to the host) replayed as one CUDA graph per batch size;
    with ``compile`` the forward is torch.compile'd (default mode) before capture."""

    def __init__(self, model, sizes: set[int], shape: tuple[int, ...], device: torch.device,
                 compile: bool = False) -> None:
        fwd = model
        if compile:
            fwd = torch.compile(model, dynamic=False)      # default mode: no autotuning, no cudagraphs
        self.graphs: dict[int, tuple] = {}
        pool = torch.cuda.graph_pool_handle()
        with torch.no_grad():
            for b in sorted(sizes):
                x = torch.zeros(b, *shape, device=device)
                side = torch.cuda.Stream(device)
                side.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(side):
                    for _ in range(2):
                        fwd(x)
                torch.cuda.current_stream(device).wait_stream(side)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=pool):
                    pred = fwd(x)[-1].argmax(dim=1)
                self.graphs[b] = (g, x, pred)
        torch.cuda.synchronize(device)

    def time(self, batches: list[torch.Tensor]) -> float:
        seconds = 0.0
        for xb in batches:
            g, x, pred = self.graphs[int(xb.shape[0])]
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            x.copy_(xb)
            g.replay()
            pred.cpu()
            seconds += time.perf_counter() - t0
        return seconds


def fmt(x: float, digits: int = 1) -> str:
    return "skipped" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="model config (random init)")
    ap.add_argument("--checkpoint", help="use the weights (and config) of this checkpoint instead")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's; quick: 1)")
    ap.add_argument("--images", type=int, help="timed images (default 2048; GPU 4096; quick 256)")
    ap.add_argument("--calib", type=int, help="calibration images (default 1024; GPU 2048; quick 256)")
    ap.add_argument("--batch-size", type=int, help="default 128 (GPU 512)")
    ap.add_argument("--ps", type=float, nargs="+", help="p of the exit shares q_k ~ p^k, one budget each "
                    "(default 0.25 0.5 1 2 4; quick 0.25 1 4)")
    ap.add_argument("--repeat", type=int, help="timed repetitions, best reported (default 3; quick 2)")
    ap.add_argument("--latency-images", type=int, help="batch-1 images per exit (default 50; GPU 200; quick 12)")
    ap.add_argument("--no-lazy", action="store_true", help="turn lazy evaluation off")
    ap.add_argument("--compile", action="store_true",
                    help="CUDA: torch.compile the full forward before capturing it (adds a minute or more)")
    ap.add_argument("--time-budget", type=float, help="seconds after which no new measurement starts "
                    "(default 150; quick 50)")
    ap.add_argument("--csv", help="write every row here")
    ap.add_argument("--quick", action="store_true", help="small run for a 2-core CPU (under a minute)")
    args = ap.parse_args()
    start = time.perf_counter()

    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    n_images = args.images or (256 if args.quick else 4096 if gpu else 2048)
    n_calib = args.calib or (256 if args.quick else 2048 if gpu else 1024)
    batch_size = args.batch_size or (512 if gpu else 128)
    repeat = args.repeat or (2 if args.quick else 3)
    n_lat = args.latency_images or (12 if args.quick else 200 if gpu else 50)
    ps = args.ps or ([0.25, 1.0, 4.0] if args.quick else [0.25, 0.5, 1.0, 2.0, 4.0])
    budget_s = args.time_budget or (50.0 if args.quick else 150.0)
    lazy = not args.no_lazy

    def time_left(share: float = 1.0) -> bool:
        """Whether a new measurement may start: throughput gets the first 60 % of the budget."""
        return time.perf_counter() - start < share * budget_s

    model, name = load_model(args, device)
    k = model.num_exits
    gen = torch.Generator().manual_seed(1)
    calib = torch.randn(n_calib, *model.input_size, generator=gen).to(device)
    x = torch.randn(n_images, *model.input_size, generator=gen).to(device)
    batches = batches_of(x, batch_size)
    costs = np.array([c.macs for c in count_costs(model, lazy=lazy)], dtype=np.int64)
    full_macs = int(count_costs(model)[-1].macs)

    logits, _, _ = collect_logits(model, [(b, torch.zeros(len(b), dtype=torch.long), torch.arange(len(b)))
                                          for b in batches_of(calib, batch_size)])
    conf = np.stack([confidence_rows(logits[e], "max_prob") for e in range(k)])

    t0 = time.perf_counter()
    engine = ExitEngine(model, max_batch=batch_size, lazy=lazy, exit_macs=costs)
    build_s = time.perf_counter() - t0
    sizes = {int(b.shape[0]) for b in batches}
    graphed = GraphedFull(model, sizes, tuple(model.input_size), device) if gpu else None

    print(f"model: {name}, {k} exits, C_1..C_K = {', '.join(f'{c / 1e6:.2f}' for c in costs)} MMACs "
          f"({'lazy' if lazy else 'no lazy'} evaluation); full evaluation {full_macs / 1e6:.2f} MMACs")
    print(f"device: {device}; {machine(device)}")
    print(f"{n_images} synthetic images (batch {batch_size}), thresholds from {n_calib} calibration images, "
          f"best of {repeat} (interleaved); fast engine {'CUDA graphs' if engine.graphs else 'eager'}, "
          f"buckets {list(engine.buckets)}, built in {build_s:.1f} s", flush=True)

    # warm-up (untimed): kernels, allocator, every batch shape
    no_exit = np.full(k - 1, np.inf)
    time_full_evaluation(model, batches[:1])
    run_early_exit(model, batches[:1], no_exit, lazy=lazy, count_macs=False, exit_macs=costs)
    engine.run(batches[:1], no_exit)

    all_rows: list[dict] = []

    def write_csv() -> None:
        if not args.csv:
            return
        keys: list[str] = []
        for r in all_rows:
            keys += [key for key in r if key not in keys]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in all_rows:
                w.writerow(r)

    # ---- throughput at batch B over budgets
    rows = []
    for p in ps:
        theta = find_thresholds(conf, exit_distribution(p, k))
        budget = float(np.bincount(assign_exits(conf, theta), minlength=k) @ costs) / n_calib
        row = {"table": "throughput", "p": p, "budget_mmacs": budget / 1e6, "budget_share": budget / full_macs,
               "batch": batch_size}
        rows.append(row)
        if not time_left(0.6):
            row["skipped"] = True
            continue
        # interleaved, best of `repeat` each: drift on a shared machine hits all of them alike
        ref_s = fast_s = full_eager_s = full_graph_s = math.inf
        fast = ref = None
        for _ in range(repeat):
            ref = run_early_exit(model, batches, theta, lazy=lazy, count_macs=False, exit_macs=costs)
            ref_s = min(ref_s, ref.seconds)
            fast = engine.run(batches, theta)
            fast_s = min(fast_s, fast.seconds)
            full_eager_s = min(full_eager_s, time_full_evaluation(model, batches).seconds)
            if graphed is not None:
                full_graph_s = min(full_graph_s, graphed.time(batches))
        assert fast is not None and ref is not None
        same = float(np.mean((fast.exits == ref.exits) & (fast.predictions == ref.predictions)))
        row.update({"mean_exit": fast.mean_exit, "expected_mmacs": fast.expected_macs_per_image / 1e6,
                    "executed_mmacs": fast.executed_macs_per_image / 1e6,
                    "full_eager_ips": n_images / full_eager_s,
                    "full_graphed_ips": n_images / full_graph_s if graphed is not None else float("nan"),
                    "ref_ips": n_images / ref_s, "fast_ips": n_images / fast_s, "fast_s": fast_s,
                    "speedup": min(full_eager_s, full_graph_s) / fast_s,
                    "mac_ratio": full_macs / fast.expected_macs_per_image,
                    "syncs_per_batch": fast.syncs / fast.batches, "same_as_reference": same})
    all_rows += rows
    write_csv()
    print()
    print("| p | budget MMACs/img (share of C_K) | mean exit | executed MMACs/img (padding) | full eager img/s "
          "| full graphed img/s | reference EE img/s | fast EE img/s | speed-up vs best full | MAC ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.get("skipped"):
            print(f"| {r['p']:g} | {r['budget_mmacs']:.2f} ({r['budget_share']:.2f}) | skipped (time budget) "
                  "| | | | | | | |")
            continue
        print(f"| {r['p']:g} | {r['budget_mmacs']:.2f} ({r['budget_share']:.2f}) | {r['mean_exit']:.2f} "
              f"| {r['executed_mmacs']:.2f} | {fmt(r['full_eager_ips'])} | "
              f"{fmt(r['full_graphed_ips']) if gpu else 'n/a'} | {fmt(r['ref_ips'])} | {fmt(r['fast_ips'])} "
              f"| {r['speedup']:.2f}x | {r['mac_ratio']:.2f}x |")
    mism = [r for r in rows if not r.get("skipped") and r["same_as_reference"] < 0.999]
    if mism:
        print(f"WARNING: fast and reference disagree on more than 0.1 % of images at p = "
              f"{[r['p'] for r in mism]}")
    print(flush=True)

    # ---- batch 1: per-exit latency
    ones = [x[i:i + 1] for i in range(min(n_lat, n_images))]
    engine1 = ExitEngine(model, max_batch=1, lazy=lazy, exit_macs=costs) if time_left() else None
    full1_eager = full1_graph = float("nan")
    fast_t = np.full(k, np.inf)
    ref_t = np.full(k, np.inf)
    reached = np.zeros(k, dtype=bool)
    if engine1 is not None:
        engine1.run(ones[:2], no_exit)
        full1_eager = time_full_evaluation(model, ones).seconds / len(ones)
        if gpu:
            full1_graph = GraphedFull(model, {1}, tuple(model.input_size), device).time(ones) / len(ones)
        for _ in range(repeat):                         # interleaved over the exits, best of each
            for e in range(k):
                if not time_left():
                    continue
                theta = np.full(k - 1, np.inf)
                if e < k - 1:
                    theta[e] = -np.inf
                fast_t[e] = min(fast_t[e], engine1.run(ones, theta).seconds / len(ones))
                ref_t[e] = min(ref_t[e], run_early_exit(model, ones, theta, lazy=lazy, count_macs=False,
                                                        exit_macs=costs).seconds / len(ones))
                reached[e] = True
    lat_rows = []
    for e in range(k):
        row = {"table": "latency", "exit": e + 1, "mac_share": costs[e] / costs[-1]}
        row.update({"fast_ms": fast_t[e] * 1e3, "ref_ms": ref_t[e] * 1e3} if reached[e] else {"skipped": True})
        lat_rows.append(row)
    if reached[-1]:
        for r in lat_rows:
            if "fast_ms" in r:
                r["time_share"] = r["fast_ms"] / lat_rows[-1]["fast_ms"]
                r["ratio"] = r["time_share"] / r["mac_share"]
    all_rows += lat_rows
    write_csv()
    print(f"Batch 1, {len(ones)} images per exit: full evaluation eager {fmt(full1_eager * 1e3, 3)} ms"
          + (f", graphed {fmt(full1_graph * 1e3, 3)} ms" if gpu else "") + " per image")
    print()
    print("| exit k | C_k / C_K | fast t_k ms | reference t_k ms | t_k / t_K (fast) | ratio (t share / MAC share) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in lat_rows:
        if r.get("skipped"):
            print(f"| {r['exit']} | {r['mac_share']:.3f} | skipped (time budget) | | | |")
            continue
        print(f"| {r['exit']} | {r['mac_share']:.3f} | {r['fast_ms']:.3f} | {r['ref_ms']:.3f} "
              f"| {fmt(r.get('time_share', float('nan')), 3)} | {fmt(r.get('ratio', float('nan')), 2)} |")
    print(flush=True)

    # ---- last, as it may take long: compiled full evaluation (the baseline)
    if args.compile and gpu:
        if not time_left():
            print("compiled full evaluation: skipped (time budget)")
        else:
            t0 = time.perf_counter()
            try:
                compiled = GraphedFull(model, sizes, tuple(model.input_size), device, compile=True)
                compile_s = time.perf_counter() - t0
                comp_s = min(compiled.time(batches) for _ in range(repeat))
            except Exception as err:                  # a failed compile must not cost the run
                print(f"compiled full evaluation: torch.compile failed ({type(err).__name__}: "
                      f"{str(err)[:300]})")
            else:
                print(f"compiled full evaluation (torch.compile default mode, then one CUDA graph; compile "
                      f"and capture {compile_s:.0f} s): {n_images / comp_s:,.1f} img/s")
                print()
                print("| p | budget share of C_K | fast EE img/s | speed-up vs compiled full |")
                print("|---:|---:|---:|---:|")
                for r in rows:
                    if not r.get("skipped"):
                        r["full_compiled_ips"] = n_images / comp_s
                        r["speedup_vs_compiled"] = comp_s / r["fast_s"]
                        print(f"| {r['p']:g} | {r['budget_share']:.2f} | {fmt(r['fast_ips'])} "
                              f"| {r['speedup_vs_compiled']:.2f}x |")
                write_csv()
    print(f"\ntotal {time.perf_counter() - start:.0f} s" + (f"; wrote {args.csv}" if args.csv else ""))

if __name__ == "__main__":
    main()
