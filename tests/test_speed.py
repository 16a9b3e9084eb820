"""The fast path: precision decided in one place, and it trains like the plain path.

The GPU's fast path is bf16 autocast + channels_last (msdnet.training.precision); on a CPU ``auto``
picks float32 + channels_last. The curve test runs both against the plain float32 NCHW path
(bf16 autocast exists on the CPU too).
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from msdnet.data import iterate_batches, load_data
from msdnet.core.errors import ConfigError
from msdnet.models import build
from msdnet.training.precision import Policy, decide, prepare_model
from msdnet.training.train import TrainConfig, load_checkpoint, make_run_config, train, train_step

from conftest import TINY_MSDNET, tiny_recipe


@pytest.fixture(autouse=True)
def _one_thread():
    # Two OpenMP threads on two cores that other jobs share thrash badly; one is steady.
    torch.set_num_threads(1)


def _curve(root, name: str, epochs: int = 4, **train_keys) -> list[float]:
    recipe = tiny_recipe(root / "data", epochs)
    recipe["train"].update(train_keys)
    ckpt = train(make_run_config(TINY_MSDNET, recipe), root / name, log=lambda *_: None)
    return [sum(v for k, v in row.items() if k.startswith("train_loss")) for row in ckpt["metrics"]]


def test_auto_policy_per_device():
    cpu = decide("cpu", TrainConfig())
    assert (cpu.dtype, cpu.channels_last, cpu.compile, cpu.autocast) == (torch.float32, True, False, False)
    gpu = decide("cuda", TrainConfig())
    assert gpu.channels_last and gpu.cudnn_benchmark
    assert gpu.compile and gpu.compile_mode == "reduce-overhead" and gpu.cuda_graphs
    ddp_gpu = decide("cuda", TrainConfig(), distributed=True)
    assert not ddp_gpu.compile and not ddp_gpu.cuda_graphs
    assert decide("cuda", TrainConfig(compile=True), distributed=True).compile_mode == "default"
    assert not decide("cuda", TrainConfig(compile=False)).compile
    assert not decide("cuda", TrainConfig(), static_graph=False).compile        # drop-path etc.
    assert decide("cuda", TrainConfig(compile=True), static_graph=False).compile


@pytest.mark.parametrize("name,static", [("msdnet-anytime-cifar100", True), ("resnet110-cifar100", True),
                                         ("resnet110-stochastic-depth-cifar100", False),
                                         ("fractalnet-cifar100", False), ("densenet-bc-100-k12-cifar100", True)])
def test_models_that_draw_per_batch_are_not_static_graphs(name, static):
    from msdnet.models import build_from_file
    from conftest import REPO
    assert build_from_file(REPO / "config" / "models" / f"{name}.yaml").static_graph is static
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        assert gpu.dtype == torch.bfloat16
    forced = decide("cpu", TrainConfig(precision="bf16", channels_last=True, compile=True))
    assert forced.describe() == {"precision": "bf16", "channels_last": True, "compile": True,
                                 "compile_mode": "default"}
    assert not forced.cuda_graphs and forced.memory_format == torch.channels_last
    graphs = TrainConfig(compile=True, compile_mode="reduce-overhead")
    assert decide("cuda", graphs).cuda_graphs
    assert not decide("cuda", TrainConfig(compile=False, compile_mode="reduce-overhead")).cuda_graphs
    with pytest.raises(ConfigError, match="compile_mode.*one CUDA process.*device cpu"):
        decide("cpu", graphs)
    with pytest.raises(ConfigError, match="compile_mode.*more than one process"):
        decide("cuda", graphs, distributed=True)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        decide("cpu", TrainConfig(precision="fp16"))


def test_speed_keys_are_strict_and_leave_the_hash_alone(tmp_path):
    base = tiny_recipe(tmp_path / "data")
    run = make_run_config(TINY_MSDNET, base)
    for key, value in [("precision", "bf16"), ("channels_last", True), ("compile", True),
                       ("compile_mode", "reduce-overhead")]:
        other = make_run_config(TINY_MSDNET, {**base, "train": {**base["train"], key: value}})
        assert other.hash == run.hash, key
    assert make_run_config(TINY_MSDNET, {**base, "train": {**base["train"], "lr": 0.1}}).hash != run.hash
    for key, bad in [("precision", "fp64"), ("channels_last", "yes"), ("compile", 1),
                     ("compile_mode", "fast")]:
        with pytest.raises(ConfigError, match=key):
            make_run_config(TINY_MSDNET, {**base, "train": {**base["train"], key: bad}})


def test_fast_path_loss_curves_match_plain_on_digits(tmp_path):
    """4 epochs of the tiny MSDNet on digits: the CPU's fast path (float32 + channels_last, what
    ``auto`` picks), the GPU's eager one (bf16 autocast + channels_last) and the compiled step
    (``torch.compile`` of forward, losses and backward) against plain float32 NCHW. On a GPU
    machine ``auto`` is the GPU's path (bf16, compiled, CUDA graphs): the same test ran there.

    Tolerance. Training amplifies any rounding difference (NHWC alone, the same float32 math
    summed in another order, moves these per-epoch losses by up to ~0.05), so the curves cannot
    agree to float precision; they must agree within run-to-run noise: (a) at every epoch the
    gap is < 0.15, a quarter of how far the loss falls in these 4 epochs (~0.6 of ~4.6, the
    sum over both exits), and (b) the mean gap is smaller than the mean gap between two plain
    runs that differ only in their seed. Measured on the CI CPU (one thread): gaps 0.01-0.05
    (float32 NHWC, mean 0.03) and 0.02-0.05 (bf16 NHWC, mean 0.04), seed-to-seed 0.03-0.18
    (mean 0.11).
    """
    plain = _curve(tmp_path, "plain", precision="fp32", channels_last=False)
    other_seed = _curve(tmp_path, "seed1", precision="fp32", channels_last=False, seed=1)
    noise = [abs(s - p) for s, p in zip(other_seed, plain)]
    assert decide("cpu", TrainConfig()).describe() == {"precision": "fp32", "channels_last": True,
                                                       "compile": False}
    gpu_keys = {"precision": "bf16", "channels_last": True, "compile": False}   # eager bf16
    for name, keys in [("cpu_fast", {}), ("gpu_fast", gpu_keys),
                       ("compiled", {"compile": True, "compile_mode": "default"})]:
        fast = _curve(tmp_path, name, **keys)
        assert fast[-1] < fast[0] - 0.3, (name, fast)                      # it learns
        gaps = [abs(f - p) for f, p in zip(fast, plain)]
        assert max(gaps) < 0.15, (name, plain, fast)
        assert sum(gaps) / len(gaps) < sum(noise) / len(noise), (name, plain, fast, other_seed)


def test_bf16_autocast_steps_match_float32(tmp_path):
    """Two SGD steps in bf16 autocast against float32 from the same weights and batches.

    bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); after dozens of layers the
    losses may differ by ~1%, so: losses within 3%, and the weight update (all parameters and
    running statistics as one vector) within 5% of its norm (measured: 1.5%; a single small
    tensor such as a first-layer BN bias, a sum over the whole backward pass, can be off by
    ~20%, so the check is on the whole update). BatchNorm parameters, running statistics and
    all gradients stay float32.
    """
    bundle = load_data(make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data")).data)
    batches = list(iterate_batches(bundle, "train", 64, shuffle=True, augment=True,
                                   generator=torch.Generator().manual_seed(0)))[:2]
    torch.manual_seed(0)
    init = build(TINY_MSDNET, "tiny")
    results = {}
    for name, policy in [("fp32", Policy("cpu")), ("bf16", Policy("cpu", dtype=torch.bfloat16))]:
        model = prepare_model(copy.deepcopy(init), policy).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        losses = [train_step(model, opt, x, y, torch.ones(model.num_exits), policy)[0] / len(y)
                  for x, y, _ in batches]
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())
        results[name] = (torch.stack(losses), model)
    (l32, m32), (l16, m16) = results["fp32"], results["bf16"]
    assert torch.allclose(l16, l32, rtol=0.03), (l16, l32)
    d32, d16 = [], []                   # the weight updates of both runs, as one vector each
    for (key, w0), w32, w16 in zip(init.state_dict().items(), m32.state_dict().values(),
                                   m16.state_dict().values()):
        assert w16.dtype == w32.dtype, key
        if w0.is_floating_point():
            d32.append((w32 - w0).flatten())
            d16.append((w16 - w0).flatten())
    d32, d16 = torch.cat(d32), torch.cat(d16)
    assert (d16 - d32).norm() <= 0.05 * d32.norm()
    bns = [m for m in m16.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(t.dtype == torch.float32 for m in bns
                       for t in (m.weight, m.bias, m.running_mean, m.running_var))


def test_resume_with_another_policy_keeps_going(tmp_path):
    """The speed keys are not in the hash: a run killed in NCHW resumes in NHWC and says so."""
    model, recipe = tmp_path / "model.yaml", tmp_path / "recipe.yaml"
    model.write_text(yaml.safe_dump(TINY_MSDNET))
    recipe.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "data", epochs=2)))
    killed = subprocess.run(
        [sys.executable, "-m", "msdnet.cli", "train", str(model), "--recipe", str(recipe), "--out",
         str(tmp_path / "run"), "--set", "train.channels_last=false"], capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MSDNET_FAULT_KILL_AFTER_EPOCH": "1"}, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["policy"]["channels_last"] is False
    logs: list[str] = []
    ckpt = train(make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=2)),
                 tmp_path / "run", log=logs.append)
    assert ckpt["finished"] and ckpt["policy"]["channels_last"] is True     # auto on a CPU
    assert any("resuming" in line for line in logs)
    assert any("channels_last': False" in line for line in logs if line.startswith("note:"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_policy_trains_in_bf16_with_float32_batchnorm():
    policy = decide("cuda", TrainConfig(compile=False))
    torch.manual_seed(0)
    model = prepare_model(build(TINY_MSDNET, "tiny").cuda(), policy).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(16, 3, 16, 16, device="cuda"), torch.randint(0, 10, (16,), device="cuda")
    ce, hits = train_step(model, opt, x, y, torch.ones(model.num_exits, device="cuda"), policy)
    assert torch.isfinite(ce).all() and hits.device.type == "cuda"
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == policy.channels_last
    assert all(p.dtype == torch.float32 for p in model.parameters())
    if torch.cuda.is_bf16_supported():
        assert policy.dtype == torch.bfloat16
