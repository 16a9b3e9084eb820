"""More runs per GPU: the aggregate training throughput of k concurrent trainings on one device.

Claim to check: CIFAR-size networks at the paper's batch 64 are launch-bound on an H100 (one
training keeps it far from busy), so k = 2 or 4 trainings sharing the card (preset key
``gpu_slots``) train more images per second in all than one, each run unchanged (batch 64, the
paper's recipe). The aggregate rate of the best k is what the GPU-hours estimate divides by
(``bench_train.py --packing``).

    python benchmarks/bench_packing.py [--device auto] [--config msdnet-anytime-cifar100]
        [--ks 1,2,4] [--variant auto] [--steps 50] [--warmup 10] [--repeats 2]
        [--mps auto|on|off] [--threads N] [--quick] [--out results/benchmarks]

How: max(ks) worker processes (this script with ``--worker``) each build the model and its
training step exactly as ``bench_train.py`` does (``bench_train.Paths``, synthetic images on the
device; ``--variant auto`` is what ``msdnet train`` runs: on CUDA bf16 + channels_last,
compiled, CUDA graphs; on a CPU float32 eager), compile once, then wait. For each k, the first
k workers run ``--warmup`` steps, wait until all k are warm, and run ``--steps`` steps together;
each reports its wall-clock start and end (after a synchronize). Aggregate images/s = all
images / (last end - first start); per process = the mean of each worker's own rate. Best of
``--repeats``. Workers that are not in a round sit idle with their CUDA context open.

CUDA MPS (``--mps``): without MPS the k processes time-slice the GPU; with it their kernels run
side by side. ``auto`` measures both when ``nvidia-cuda-mps-control`` is on the PATH: it starts
a daemon of its own (pipe and log folders in a temporary folder, ``nvidia-cuda-mps-control -d``),
runs a second set of workers under it and stops it (``quit``) afterwards. Nothing requires MPS.

Writes ``<out>/bench_packing-<device>[-quick].{csv,md}`` (rewritten after every round).
``--quick``: batch 8, 3 steps, 1 warm-up, 1 repeat: a smoke run (under a minute on a 2-core CPU)
whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TAG = "@@packing"                   # the workers' protocol lines on stdout start with this


# -- worker ---------------------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import torch

    from bench_train import MODELS, Paths, synchronize, synthetic, variants
    from msdnet.core.config import load_yaml
    from msdnet.training.train import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model_cfg = load_yaml(MODELS / f"{args.config}.yaml")
    needed = args.batch * (args.warmup + args.steps) + 1
    with tempfile.TemporaryDirectory() as root:
        bundle = synthetic(model_cfg, min(max(needed, 64), 2048), root)
    paths = Paths(model_cfg, bundle, device, args.batch, args.batch, variants(device, args.variant))
    run = paths.train_fast(args.variant)
    t0 = time.perf_counter()
    run(max(args.warmup, 1))                       # compilation, cuDNN autotuning
    synchronize(device)
    say(f"ready {time.perf_counter() - t0:.2f}")
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            return
        if cmd[0] == "warm":
            run(args.warmup)
            synchronize(device)
            say("warm")
        elif cmd[0] == "go":
            start = time.time()
            run(args.steps)
            synchronize(device)
            say(f"done {start:.6f} {time.time():.6f} {args.batch * args.steps}")


def say(msg: str) -> None:
    print(f"{TAG} {msg}", flush=True)


# -- parent ---------------------------------------------------------------------------------------
class Workers:
    def __init__(self, n: int, args: argparse.Namespace, variant: str, env: dict[str, str]) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--device", args.device,
               "--config", args.config, "--variant", variant, "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        self.procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       env=env, bufsize=1) for _ in range(n)]
        self.compile_s: list[float] = []

    def start(self) -> None:
        """Wait until every worker has built and compiled its step."""
        self.compile_s = [float(self.read(p)[1]) for p in self.procs]

    @staticmethod
    def read(p: subprocess.Popen) -> list[str]:
        for line in p.stdout:
            if line.startswith(TAG):
                return line.split()[1:]
            sys.stderr.write(line)
        raise RuntimeError(f"a worker exited (code {p.wait()}) before it answered; see its stderr above")

    def round(self, k: int) -> tuple[float, float, float]:
        """k workers run together: (aggregate images/s, mean per-process images/s, window s)."""
        active = self.procs[:k]
        for p in active:
            p.stdin.write("warm\n")
            p.stdin.flush()
        for p in active:
            assert self.read(p) == ["warm"]
        for p in active:
            p.stdin.write("go\n")
            p.stdin.flush()
        done = []
        for p in active:
            tag, start, end, images = self.read(p)
            done.append((float(start), float(end), int(images)))
        window = max(e for _, e, _ in done) - min(s for s, _, _ in done)
        aggregate = sum(n for _, _, n in done) / window
        per_process = sum(n / (e - s) for s, e, n in done) / k
        return aggregate, per_process, window

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.write("quit\n")
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


class Mps:
    """A CUDA MPS control daemon of our own (its own pipe and log folders), stopped on exit."""

    def __init__(self, folder: str) -> None:
        self.vars = {"CUDA_MPS_PIPE_DIRECTORY": f"{folder}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{folder}/log"}
        self.env = {**os.environ, **self.vars}
        for sub in ("pipe", "log"):
            os.makedirs(f"{folder}/{sub}", exist_ok=True)
        r = subprocess.run(["nvidia-cuda-mps-control", "-d"], env=self.env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"nvidia-cuda-mps-control -d failed ({r.returncode}): {r.stderr.strip()[:200]}")
        time.sleep(1)

    def stop(self) -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", env=self.env, text=True,
                       capture_output=True, timeout=30)


def _stop(signum, frame) -> None:
    raise SystemExit(f"stopped by signal {signum}; the rounds so far are written")


def mps_modes(choice: str, device_type: str) -> list[str]:
    have = device_type == "cuda" and shutil.which("nvidia-cuda-mps-control") is not None
    if choice == "on" and not have:
        raise SystemExit("--mps on: needs a CUDA device and nvidia-cuda-mps-control on the PATH")
    return {"off": ["off"], "on": ["on"], "auto": ["off", "on"] if have else ["off"]}[choice]


def markdown(rows: list[dict], header: str) -> str:
    cols = ["config", "variant", "mps", "k", "batch", "aggregate_img_s", "per_process_img_s",
            "vs_k1", "compile_s"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write(rows: list[dict], header: str, out: Path, stem: str) -> str:
    from msdnet.core.io import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out / f"{stem}.csv", buf.getvalue())
    text = markdown(rows, header)
    write_text_atomic(out / f"{stem}.md", text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    ap.add_argument("--config", default="msdnet-anytime-cifar100", help="a config/models name")
    ap.add_argument("--ks", default="1,2,4", help="numbers of concurrent trainings")
    ap.add_argument("--variant", default="auto",
                    help="bench_train variant: fast, fast_compile, fast_graphs; auto: what msdnet train "
                         "runs (fast_graphs on CUDA, fast on a CPU)")
    ap.add_argument("--batch", type=int, default=None, help="training batch (default 64, the recipe's)")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per worker per round")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps before each round")
    ap.add_argument("--repeats", type=int, default=2, help="rounds per k; the best is reported")
    ap.add_argument("--mps", default="auto", choices=["auto", "on", "off"], help="CUDA MPS; see above")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per worker")
    ap.add_argument("--quick", action="store_true", help="smoke run: batch 8, 3 steps, 1 repeat")
    ap.add_argument("--out", default=str(HERE.parent / "results" / "benchmarks"), help="output folder")
    ap.add_argument("--stem", default=None, help="output file stem (default bench_packing-<device>)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.warmup, args.repeats = min(args.steps, 3), min(args.warmup, 1), 1
        args.batch = args.batch or 8
    args.batch = args.batch or 64
    if args.worker:
        return worker(args)

    import torch

    from bench_train import machine, variants
    from msdnet.core.io import code_version
    from msdnet.training.train import resolve_device

    signal.signal(signal.SIGTERM, _stop)           # `timeout`: still stop the MPS daemon and workers
    device = resolve_device(args.device)
    variant = args.variant
    if variant == "auto":
        variant = "fast_graphs" if device.type == "cuda" else "fast"
    variants(device, variant)                      # refuses an unknown one before any worker starts
    ks = sorted({int(k) for k in args.ks.split(",")})
    torch.set_num_threads(args.threads)
    name = machine(device)
    header = (f"# bench_packing on {name}\n\ncode {code_version()}; command: "
              f"`{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`; steps {args.steps}, warmup "
              f"{args.warmup}, repeats {args.repeats}; {args.threads} CPU thread(s) per worker")
    print(header, flush=True)
    out, stem = Path(args.out), args.stem or f"bench_packing-{device.type}{'-quick' if args.quick else ''}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE), str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    rows: list[dict] = []
    for mode in mps_modes(args.mps, device.type):
        with tempfile.TemporaryDirectory() as tmp:
            mps, workers = None, None
            try:
                if mode == "on":
                    mps = Mps(tmp)
                workers = Workers(max(ks), args, variant, env | (mps.vars if mps else {}))
                workers.start()
                for k in ks:
                    best = max((workers.round(k) for _ in range(args.repeats)), key=lambda r: r[0])
                    base = next((r for r in rows if r["k"] == 1), None)      # mps off when measured
                    agg = round(best[0], 2)
                    rows.append({"config": args.config, "variant": variant, "mps": mode, "k": k,
                                 "batch": args.batch, "steps": args.steps, "aggregate_img_s": agg,
                                 "per_process_img_s": round(best[1], 2),
                                 "vs_k1": round(agg / (base or {"aggregate_img_s": agg})["aggregate_img_s"], 2),
                                 "window_s": round(best[2], 3),
                                 "compile_s": round(max(workers.compile_s), 1), "machine": name})
                    print(" ".join(f"{c}={v}" for c, v in rows[-1].items() if c != "machine"), flush=True)
                    write(rows, header, out, stem)
            except RuntimeError as exc:
                print(f"mps={mode}: {exc}", flush=True)
            finally:
                if workers:
                    workers.close()
                if mps:
                    mps.stop()
    if not rows:
        raise SystemExit("nothing measured")
    print("\n" + write(rows, header, out, stem))
    print(f"wrote {out / stem}.csv and .md")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
