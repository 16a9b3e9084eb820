"""Early exit that pays on a GPU: fixed-size work per exit, replayed as CUDA graphs.

:func:`msdnet.inference.early_exit.run_early_exit` is the simple, exact, counted path: per exit it copies the
logits to the host, decides there and calls ``state.select`` -- one host round trip and a batch of
a new, odd size per exit. On a GPU a CIFAR-size batch then costs kernel launches and waits, not
MACs. :class:`ExitEngine` does the same classification with the work per exit fixed in advance:

* **Buckets.** Batch sizes are rounded up to a bucket (:func:`bucket_sizes`: powers of two up to
  ``granularity``, then multiples of it, up to ``max_batch``). Every exit stage k and bucket b has
  static buffers, and on CUDA one captured ``torch.cuda.CUDAGraph`` (captured once, when the
  engine is built). Rows past the real images are padding: they are computed but never read.
* **One stage = one graph replay.** Stage k at bucket b reads the state of the images still in
  the batch from stage k's input buffers (the first b rows), advances the model one exit
  (``model.advance``), computes the confidence on the device (float64, :func:`device_confidence`),
  compares with theta_k, records exit / prediction / confidence of the leaving images in
  per-batch result buffers (indexed by each image's position in the batch), and compacts the
  staying images to the front of stage k+1's input buffers (a stable sort of the stay flags and
  one gather per state tensor; every per-image tensor of the state is gathered). It also writes
  the number of staying images, which is stage k+1's count of real rows, on the device.
* **One host sync per exit** (none after the last): the host reads the count of staying images
  (two int64s) to pick the next bucket, or stops when nobody stays. Results come back in one sync
  per batch at the end (three copies to pinned memory).
* **Memory.** One set of input buffers per stage, ``max_batch`` rows each, shared by every bucket
  (bucket b uses the first b rows). The graphs share one memory pool and keep no outputs of their
  own: what later steps read (next stage's inputs, results, counts, the stage's logits and
  compaction order for a host decision) is copied into the engine's buffers inside the graph.

Confidence on the device. :func:`device_confidence` does the same float64 operations, in the
same order, as ``scores.confidence_rows`` on the same float32 logits. The elementwise
``exp``/``log`` and the sum's reduction order may still differ from numpy's in the last bit or
two (about 1e-16 relative), so the device's decision can only differ from the host's when the
confidence lies within that distance of theta_k. Such images are caught: the stage also counts
the real rows with ``|conf - theta_k| <= 1e-10 * max(1, |theta_k|)`` ("near"), returned with
the count of staying images in the same sync. When it is non-zero (rare: it happens when theta
is the very confidence of an image in the batch, e.g. thresholds taken from the same images),
that stage's logits are copied to the host, the confidences and decisions recomputed there by
``confidence_rows`` exactly as the reference does, and the recording and compaction of that
stage redone eagerly. So on the same float32 logits every decision is the host's, bit for bit;
recorded confidences may differ from the host's by an ulp (outside the near band).

The logits themselves depend, as in the reference path, on the batch size the kernels see (here
the bucket, padding included): about 1e-7 relative in float32, so an image within ~1e-6 of a
threshold can exit one step earlier or later than the simulation on recorded logits says (the
same tolerance as ``tests/test_inference.py``). Padding rows never influence real rows: every op
of these models works per image in eval mode (BatchNorm uses its running statistics), which the
tests check by filling the padding with NaN.

Costs. ``exit_macs`` are the cumulative C_k of :func:`msdnet.models.cost.count_costs` under the same
evaluation mode; ``expected_macs`` = sum_k n_k C_k as for the reference. ``executed_macs`` adds
the padding: sum over the replays of bucket x (C_k - C_{k-1}).

Without CUDA (or ``graphs=False``) the very same stage code runs eagerly: that is what the CPU
tests check against the reference path and the simulation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .scores import check_measure, confidence_rows, json_number
from .early_exit import (EarlyExitResult, InferenceError, _model_device, _sync, _unpack,
                        classify_batches, exit_costs, normalize_thresholds)
from ..models.base import ExitState, MultiExitModel

__all__ = ["ExitEngine", "FastExitResult", "NEAR_BAND", "bucket_sizes", "compact", "device_confidence",
           "pick_bucket", "run_fast_exit"]

NEAR_BAND = 1e-10       # |conf - theta| <= NEAR_BAND * max(1, |theta|): decided on the host


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------

def bucket_sizes(max_batch: int, granularity: int = 64) -> tuple[int, ...]:
    """Batch-size buckets: 1, 2, 4, ... below ``granularity``, then multiples of it, up to
    ``max_batch`` (always the last bucket). Padding waste is < 2x below ``granularity`` and
    < ``granularity`` rows above it."""
    if max_batch < 1 or granularity < 1:
        raise InferenceError(f"max_batch and granularity must be >= 1, got {max_batch}, {granularity}")
    out: list[int] = []
    b = 1
    while b < min(granularity, max_batch):
        out.append(b)
        b *= 2
    b = granularity
    while b < max_batch:
        out.append(b)
        b += granularity
    out.append(max_batch)
    return tuple(sorted(set(out)))


def pick_bucket(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= n (buckets sorted ascending)."""
    for b in buckets:
        if b >= n:
            return b
    raise InferenceError(f"{n} images do not fit the largest bucket {buckets[-1] if buckets else 0}")


def compact(stay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, count): a permutation putting the rows with ``stay`` first, each group in its
    original order (a stable sort), and the number of staying rows, as a device tensor (no sync).
    ``t[order][:count]`` equals ``t[stay]``."""
    order = torch.sort((~stay).to(torch.uint8), stable=True).indices
    return order, stay.sum()


def device_confidence(logits: torch.Tensor, measure: str) -> torch.Tensor:
    """``scores.confidence_rows`` in torch on the logits' device, float64, same op order."""
    x = logits.to(torch.float64)
    z = x - x.amax(dim=1, keepdim=True)
    logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
    p = torch.exp(logp)
    if measure == "max_prob":
        return p.amax(dim=1)
    if measure == "entropy":
        return (p * logp).sum(dim=1)
    if measure == "margin":
        if p.shape[1] == 1:
            return p[:, 0]
        top2 = torch.topk(p, 2, dim=1).values
        return top2[:, 0] - top2[:, 1]
    check_measure(measure)
    raise AssertionError(measure)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------

@dataclass
class FastExitResult(EarlyExitResult):
    """An :class:`EarlyExitResult` (``measured_macs`` is None: no op counter runs) plus the engine's
    bookkeeping: MACs executed including the bucket padding, stages run (graph replays), host
    syncs for the per-exit counts (the results' copy adds one per batch), and the real rows of the
    stages whose decision was redone on the host (some confidence near a threshold)."""

    executed_macs: int = 0
    replays: int = 0
    syncs: int = 0
    host_rows: int = 0
    graphs: bool = False

    @property
    def executed_macs_per_image(self) -> float:
        return self.executed_macs / self.n_images if self.n_images else float("nan")

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out.update({"engine": "fast", "graphs": self.graphs, "executed_macs": int(self.executed_macs),
                    "executed_macs_per_image": json_number(self.executed_macs_per_image),
                    "replays": self.replays, "syncs": self.syncs, "host_rows": self.host_rows})
        return out


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

class ExitEngine:
    """Early-exit classification with fixed-size work per exit (see the module docstring).

    Built once per (model, device, max batch, lazy, confidence); thresholds change per call of
    :meth:`run` without recapturing. ``graphs``: capture CUDA graphs (default: on CUDA); False
    runs the same stage code eagerly. ``buckets``: batch sizes (default
    ``bucket_sizes(max_batch, granularity)``). The model is put in eval mode and must stay so.
    """

    @torch.no_grad()
    def __init__(self, model: MultiExitModel, *, max_batch: int = 512, lazy: bool = True,
                 confidence: str = "max_prob", device: str | torch.device | None = None,
                 graphs: bool | None = None, buckets: Sequence[int] | None = None, granularity: int = 64,
                 exit_macs: Iterable[int] | None = None) -> None:
        check_measure(confidence)
        self.model = model
        self.device = _model_device(model, device)
        self.lazy = bool(lazy)
        self.measure = confidence
        self.max_batch = int(max_batch)
        if self.max_batch < 1:
            raise InferenceError(f"max_batch must be >= 1, got {max_batch}")
        self.buckets = tuple(sorted(set(int(b) for b in buckets))) if buckets else bucket_sizes(self.max_batch,
                                                                                                granularity)
        if self.buckets[0] < 1 or self.buckets[-1] < self.max_batch:
            raise InferenceError(f"buckets {self.buckets} must be >= 1 and reach max_batch {self.max_batch}")
        cuda = self.device.type == "cuda"
        if graphs and not cuda:
            raise InferenceError("CUDA graphs need a CUDA device")
        self.graphs = cuda if graphs is None else bool(graphs)
        k_exits = int(model.num_exits)
        self.num_exits = k_exits
        model.eval()
        costs = exit_costs(model, self.lazy, exit_macs)
        self.exit_macs = costs
        self.stage_macs = np.diff(costs, prepend=0)
        dev, cap = self.device, self.buckets[-1]

        # the state's structure at the entry of every stage, from an eager probe at batch 2
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        probe = torch.zeros(2, *model.input_size, device=dev, dtype=dtype)
        state = model.begin(probe, lazy=self.lazy)
        self._specs, self._templates, self._bufs, self._logit_shapes = [], [], [], []
        for k in range(k_exits):
            leaves, spec = tree_flatten(state.cache)
            bufs = []
            for leaf in leaves:
                if isinstance(leaf, torch.Tensor):
                    if leaf.dim() < 1 or leaf.shape[0] != 2:
                        raise InferenceError(f"{type(model).__name__}'s exit state holds a tensor of shape "
                                             f"{tuple(leaf.shape)} that is not per image; the engine "
                                             "needs every state tensor to have the batch first")
                    bufs.append(torch.zeros((cap, *leaf.shape[1:]), dtype=leaf.dtype, device=dev))
                else:
                    bufs.append(None)
            self._specs.append(spec)
            self._templates.append(leaves)
            self._bufs.append(bufs)
            self._logit_shapes.append(tuple(model.advance(state).shape[1:]))
        self._pos = [torch.zeros(cap, dtype=torch.int64, device=dev) for _ in range(k_exits)]
        self._pos[0].copy_(torch.arange(cap, device=dev))
        self._n0 = torch.zeros((), dtype=torch.int64, device=dev)
        self._stat = [torch.zeros(2, dtype=torch.int64, device=dev) for _ in range(k_exits)]
        # what a host decision needs after the stage ran: its logits and its compaction order
        self._logits = [torch.zeros((cap, *shape), dtype=torch.float32, device=dev) for shape in self._logit_shapes]
        self._order = [torch.zeros(cap, dtype=torch.int64, device=dev) for _ in range(k_exits)]
        self._theta = torch.full((k_exits,), -math.inf, dtype=torch.float64, device=dev)
        self._band = torch.zeros(k_exits, dtype=torch.float64, device=dev)
        # per-batch results by position in the batch (+ one slot that padding rows write to)
        self._res = [torch.zeros(cap + 1, dtype=dt, device=dev) for dt in (torch.int64, torch.int64, torch.float64)]
        pin = dev.type == "cuda"
        self._host = [torch.zeros(cap + 1, dtype=t.dtype, pin_memory=pin) for t in self._res]
        self._rows = {b: torch.arange(b, device=dev) for b in self.buckets}
        self._dummy = cap                                                       # slot for padding rows
        self._graphs: dict[tuple[int, int], Any] = {}
        self._theta_host = np.full(k_exits, -np.inf)
        self.capture_seconds = 0.0
        if self.graphs:
            self._capture()

    # -- one stage ------------------------------------------------------------------------------
    def _count(self, k: int) -> torch.Tensor:
        return self._n0 if k == 0 else self._stat[k - 1][0]

    def _advance(self, k: int, b: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        leaves = [buf[:b] if buf is not None else t for buf, t in zip(self._bufs[k], self._templates[k])]
        state = ExitState(next_exit=k, cache=tree_unflatten(leaves, self._specs[k]), lazy=self.lazy)
        logits = self.model.advance(state)
        out, spec = tree_flatten(state.cache)
        if k + 1 < self.num_exits and spec != self._specs[k + 1]:
            raise InferenceError(f"{type(self.model).__name__}'s exit state changes structure with the "
                                 "batch; the engine needs the same state structure for every batch")
        return logits, [t for t in out if isinstance(t, torch.Tensor)]

    def _record(self, k: int, b: int, logits: torch.Tensor, conf: torch.Tensor, leave: torch.Tensor) -> None:
        """Exit k, prediction and confidence of the rows that leave, at their batch positions."""
        target = torch.where(leave, self._pos[k][:b], self._dummy)
        self._res[0].index_fill_(0, target, k)
        self._res[1].index_copy_(0, target, logits.argmax(dim=1))
        self._res[2].index_copy_(0, target, conf)

    def _stage(self, k: int, b: int) -> torch.Tensor:
        """Stage k at bucket b, the code a graph captures; every result lands in the engine's own
        buffers (nothing a later step reads lives in the graph's memory pool). Returns the logits
        (for tests)."""
        logits, out = self._advance(k, b)
        conf = device_confidence(logits, self.measure)
        real = self._rows[b] < self._count(k)
        last = k + 1 == self.num_exits
        theta = self._theta[k]
        leave = real if last else real & (conf >= theta)
        self._record(k, b, logits, conf, leave)
        if last:
            return logits
        near = real & ((conf - theta).abs() <= self._band[k])
        order, count = compact(real & ~leave)
        nxt = [buf for buf in self._bufs[k + 1] if buf is not None]
        for src, dst in zip(out, nxt):
            dst[:b].copy_(src.index_select(0, order))
        self._pos[k + 1][:b].copy_(self._pos[k][:b].index_select(0, order))
        self._stat[k][0].copy_(count)
        self._stat[k][1].copy_(near.sum())
        self._logits[k][:b].copy_(logits)
        self._order[k][:b].copy_(order)
        return logits

    def _capture(self) -> None:
        """One CUDA graph per (stage, bucket), all in one memory pool. Sharing the pool is safe
        although the replay order differs from the capture order: a graph's outputs are consumed
        inside the graph (copied to the engine's buffers), never by a later replay."""
        t0 = time.perf_counter()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):                  # warm-up: lazy init, cuDNN/cuBLAS handles
            for k in range(self.num_exits):
                for b in self.buckets:
                    self._stage(k, b)
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        pool = torch.cuda.graph_pool_handle()
        for k in range(self.num_exits):
            for b in self.buckets:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    self._stage(k, b)
                self._graphs[(k, b)] = graph
        torch.cuda.synchronize(self.device)
        self.capture_seconds = time.perf_counter() - t0

    def _run_stage(self, k: int, b: int) -> None:
        graph = self._graphs.get((k, b))
        if graph is not None:
            graph.replay()
        else:
            self._stage(k, b)

    def _host_decide(self, k: int, b: int, n: int) -> int:
        """Redo stage k's decision on the host, with the reference's ``confidence_rows`` on the
        stage's float32 logits; re-record and re-compact. Returns the count of staying rows."""
        dev = self.device
        logits = self._logits[k][:b]
        conf_h = confidence_rows(logits[:n].cpu().numpy(), self.measure)
        leave_h = conf_h >= self._theta_host[k]
        conf = torch.zeros(b, dtype=torch.float64, device=dev)
        conf[:n] = torch.from_numpy(conf_h).to(dev)
        leave = torch.zeros(b, dtype=torch.bool, device=dev)
        leave[:n] = torch.from_numpy(leave_h).to(dev)
        self._record(k, b, logits, conf, leave)
        # stage k+1's buffers hold the stage's rows permuted by `order`: permute them again so
        # that the rows the host keeps come first
        real = self._rows[b] < n
        order = self._order[k][:b]
        again, count = compact((real & ~leave).index_select(0, order))
        for buf in self._bufs[k + 1]:
            if buf is not None:
                buf[:b].copy_(buf[:b].index_select(0, again))
        self._pos[k + 1][:b].copy_(self._pos[k + 1][:b].index_select(0, again))
        self._stat[k][0].copy_(count)
        return int(count)

    # -- the API --------------------------------------------------------------------------------
    def set_thresholds(self, thresholds: Iterable[float] | np.ndarray) -> np.ndarray:
        theta = normalize_thresholds(thresholds, self.num_exits)
        band = np.where(np.isfinite(theta), NEAR_BAND * np.maximum(1.0, np.abs(theta)), 0.0)
        band[-1] = 0.0
        self._theta.copy_(torch.from_numpy(theta))
        self._band.copy_(torch.from_numpy(band))
        self._theta_host = theta
        return theta

    def classify(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
        """One batch (on the engine's device, at most ``max_batch`` images) with the current
        thresholds: (exits, predictions, confidences, counters)."""
        n = int(x.shape[0])
        stats = {"replays": 0, "syncs": 0, "host_rows": 0, "executed_macs": 0}
        if n == 0:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64), stats)
        if n > self.max_batch:
            raise InferenceError(f"batch of {n} images exceeds the engine's max_batch {self.max_batch}")
        b = pick_bucket(n, self.buckets)
        leaves, spec = tree_flatten(self.model.begin(x, lazy=self.lazy).cache)   # nothing computed yet
        if spec != self._specs[0]:
            raise InferenceError(f"{type(self.model).__name__}.begin() gave another state structure than "
                                 "when the engine was built")
        for leaf, buf in zip(leaves, self._bufs[0]):
            if buf is not None:
                buf[:n].copy_(leaf)
        self._n0.fill_(n)
        for k in range(self.num_exits):
            self._run_stage(k, b)
            stats["replays"] += 1
            stats["executed_macs"] += b * int(self.stage_macs[k])
            if k + 1 == self.num_exits:
                break
            stay, near = self._stat[k].tolist()                 # the one sync of this exit
            stats["syncs"] += 1
            if near:
                stats["host_rows"] += n
                stay = self._host_decide(k, b, n)
            if stay == 0:
                break
            n, b = stay, pick_bucket(stay, self.buckets)
        total = int(x.shape[0])
        for dev_buf, host_buf in zip(self._res, self._host):        # one sync for the three copies
            host_buf[:total].copy_(dev_buf[:total], non_blocking=True)
        _sync(self.device)
        exits, preds, confs = (h[:total].numpy().copy() for h in self._host)
        return exits, preds, confs, stats

    @torch.no_grad()
    def run(self, batches: Iterable[Any], thresholds: Iterable[float] | np.ndarray) -> FastExitResult:
        """Classify ``batches`` (tensors x or tuples (x, y[, ids]), as :func:`run_early_exit`);
        timed like it: the model work of each batch, between device syncs."""
        theta = self.set_thresholds(thresholds)
        self.model.eval()
        totals = {"replays": 0, "syncs": 0, "host_rows": 0, "executed_macs": 0}

        def classify(x: torch.Tensor) -> tuple[np.ndarray, ...]:
            parts = []
            for s in range(0, max(1, int(x.shape[0])), self.max_batch):     # chunks of max_batch
                *result, stats = self.classify(x[s:s + self.max_batch])
                parts.append(result)
                for key in totals:
                    totals[key] += stats[key]
            return tuple(np.concatenate(col) for col in zip(*parts))

        results = classify_batches(batches, self.device, classify)
        return FastExitResult(**results, thresholds=theta, exit_macs=self.exit_macs, measured_macs=None,
                              lazy=self.lazy, confidence=self.measure, device=str(self.device),
                              graphs=self.graphs, **totals)


def run_fast_exit(model: MultiExitModel, batches: Iterable[Any], thresholds: Iterable[float] | np.ndarray,
                  *, max_batch: int | None = None, **engine_kw: Any) -> FastExitResult:
    """Build an :class:`ExitEngine` and run it once (``max_batch`` default: the first batch's size).
    Building captures the graphs, so keep the engine for repeated runs."""
    batches = list(batches)
    if max_batch is None:
        sizes = [int(_unpack(b, 0)[0].shape[0]) for b in batches]
        max_batch = max(sizes + [1])
    return ExitEngine(model, max_batch=max_batch, **engine_kw).run(batches, thresholds)
