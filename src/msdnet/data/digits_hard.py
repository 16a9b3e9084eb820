"""``digits-hard``: a harder, larger data set derived from scikit-learn's 1,797 digits.

Nothing is downloaded: every image is a seeded, deterministic variant of one of the bundled
8x8 digits (``sklearn.datasets.load_digits``).

Construction (see docs/data.md):

1. **Source split first.** The 1,797 source digits are split, stratified by class and seeded by
   ``split_seed``, into a test pool (``test_size``), a validation pool (``val_size``, of the
   rest) and a training pool. The split is saved like the digits split
   (``root/digits-hard/splits/holdout-seed{seed}-val{n}-test{n}-of1797.json``, indices into
   the source digits) and re-read afterwards.
2. **Variants per pool.** Each pool yields its own images (``hard_train_images``,
   ``hard_val_images``, ``hard_test_images``: 8,000, 2,000, 3,000 by default), every source digit of the pool used equally
   often (to within one). A variant, and anything pasted into it, comes only from its own
   pool, so no source digit is shared between splits.
3. **A difficulty per image**, ``d`` in [0, 1], drawn from Beta(1.2, 2.4) (many easy, few
   hard), scales every transform: affine jitter (rotation, scale, shear, translation), stroke
   thickness (dilation or erosion), clutter (a shifted piece of another digit of the pool),
   occlusion (a block or a line), colour contrast (foreground and background colours drawn
   closer together) and Gaussian noise. Easy images look like clean upsampled digits;
   hard ones are small, slanted, cluttered, partly covered and noisy.

The images are uint8 ``[N, 3, S, S]`` (``S = image_size``). The arrays are cached in
``root/digits-hard/digits-hard-s{S}-seed{seed}-{key}.npz``, ``key`` a hash of every construction
parameter (sizes, seed, source split, recipe version); a missing cache is generated (seconds on
one core) and written atomically; an unreadable or mismatching one is regenerated with a warning.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..core.io import atomic_path, stable_hash
from .arrays import ArraySplit, channel_stats
from .bundle import DataBundle
from .config import DataConfig
from .splits import _read as read_split_file
from .splits import resolve_count, save_split, split_path, train_mask

NAME = "digits-hard"
NUM_CLASSES = 10
CLASS_NAMES = tuple(str(c) for c in range(NUM_CLASSES))
N_SOURCE = 1797
DEFAULT_VAL_SHARE = 0.2
RECIPE_VERSION = 1         # bump when the construction below changes: it is part of the cache key
CONTENT_SEED = 20180       # mixed with split_seed and the split's index into every pool's seed
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

# The recipe. Every strength is the value at difficulty 1; an image of difficulty d gets d times it
# (probabilities: the probability at d).
DIFFICULTY_BETA = (1.2, 2.4)   # mean 1/3: many easy images, a tail of hard ones
ROTATION_DEG = 45.0            # std of the rotation angle (clipped at 1.5 std)
SCALE_LOG = 0.30               # std of log(scale); scale < 1 shrinks the digit
SCALE_SHRINK = 0.25            # mean log-scale goes down by this much (hard digits are smaller)
SHEAR = 0.45                   # std of the shear factor
TRANSLATE = 0.30               # max shift, as a share of the image side
STROKE = 1.0                   # blend towards a 3x3 dilation (+) or erosion (-): uniform in +-d
CLUTTER_P = 1.0                # probability of a pasted piece of another digit
CLUTTER_ALPHA = 1.0            # its brightness relative to the digit
OCCLUDE_P = 0.8                # probability of an occluder (block or line)
OCCLUDE_SIZE = 0.45            # block side / line width scale, as a share of the image side
CONTRAST = 0.5                 # foreground-background distance shrinks to (1 - CONTRAST) at d = 1
NOISE = 0.10                   # std of the Gaussian pixel noise on the [0, 1] scale


@dataclass
class HardDigits:
    """Every generated image of the data set, in the order train, val, test.

    Attributes:
        images: uint8 ``[N, 3, S, S]``.
        labels: int64 ``[N]``.
        source: int64 ``[N]``: index of the source digit in ``load_digits()``.
        clutter: int64 ``[N]``: index of the source digit a piece of which was pasted into the
            background (-1: no clutter); always from the same split's pool as ``source``.
        difficulty: float32 ``[N]``: the drawn difficulty in [0, 1].
        split: int8 ``[N]``: 0 train, 1 val, 2 test (:data:`SPLIT_CODES`).
        params: the construction parameters (the cache key is their hash).
    """

    images: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    clutter: np.ndarray
    difficulty: np.ndarray
    split: np.ndarray
    params: dict

    def index(self, split: str) -> np.ndarray:
        """Indices (into the whole set) of the images of ``split``."""
        return np.flatnonzero(self.split == SPLIT_CODES[split])


# ------------------------------------------------------------------ the source split


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(len(labels))`` whose every prefix is stratified by class.

    Within each class the members are shuffled; member ``j`` of a class of ``n`` gets the key
    ``(j + u) / n`` (``u`` uniform per class) and the permutation sorts by key, so any prefix
    holds each class in proportion to its size, to within one image.
    """
    rng = np.random.default_rng([CONTENT_SEED, seed, 99])
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keys[members] = (np.arange(len(members)) + rng.uniform()) / len(members)
    return np.lexsort((rng.permutation(len(labels)), keys))


def source_split(cfg: DataConfig, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Sorted (train, val, test) source-digit indices and the split file that fixes them."""
    n_total = len(labels)
    n_test = resolve_count(cfg.test_size, n_total, cfg.test_size, "test_size")
    n_val = resolve_count(cfg.val_size, n_total - n_test, DEFAULT_VAL_SHARE, "val_size")
    path = split_path(cfg.root, NAME, cfg.split_seed, n_val, n_test, n_total)
    if path.exists():
        val, test = read_split_file(path, NAME, cfg.split_seed, n_total, n_val, n_test)
    else:
        order = stratified_order(labels, cfg.split_seed)
        test, val = np.sort(order[:n_test]), np.sort(order[n_test:n_test + n_val])
        save_split(path, NAME, cfg.split_seed, n_total, val, test)
    mask = train_mask(n_total, val, test)
    return np.flatnonzero(mask), val.astype(np.int64), test.astype(np.int64), str(path)


# ------------------------------------------------------------------ the variants


def _affine(rng: np.random.Generator, d: np.ndarray, big_shift: bool = False) -> torch.Tensor:
    """Per-image ``[n, 2, 3]`` matrices mapping output to input coordinates (affine_grid's theta)."""
    n = len(d)
    angle = np.deg2rad(np.clip(rng.normal(0.0, 1.0, n), -1.5, 1.5) * ROTATION_DEG * d)   # no 6 <-> 9
    scale = np.exp(rng.normal(-SCALE_SHRINK * d, SCALE_LOG * d))
    shear = rng.normal(0.0, SHEAR, n) * d
    limit = 2.0 * TRANSLATE * (np.maximum(d, 0.75) if big_shift else d)
    shift = rng.uniform(-1.0, 1.0, (n, 2)) * limit[:, None]
    if big_shift:       # clutter: pushed towards an edge, so only a piece of it shows
        shift += np.sign(shift) * 0.6
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map A = R @ Sh * scale; theta is its inverse (output -> input)
    a = np.stack([np.stack([cos, cos * shear - sin], -1), np.stack([sin, sin * shear + cos], -1)], -2)
    a = a * scale[:, None, None]
    inv = np.linalg.inv(a)
    theta = np.concatenate([inv, -(inv @ shift[:, :, None])], axis=2)
    return torch.from_numpy(theta.astype(np.float32))


def _warp(digits: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Sample ``[n, 1, 8, 8]`` digits through ``theta`` onto an ``size`` x ``size`` grid."""
    grid = F.affine_grid(theta, [len(digits), 1, size, size], align_corners=False)
    return F.grid_sample(digits, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _stroke(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Blend towards a 3x3 dilation (``amount`` > 0) or erosion (< 0) by ``|amount|``."""
    dil = F.max_pool2d(x, 3, 1, 1)
    ero = -F.max_pool2d(-x, 3, 1, 1)
    a = amount.view(-1, 1, 1, 1)
    return torch.where(a > 0, x + a * (dil - x), x + (-a) * (ero - x))


def _occluders(rng: np.random.Generator, d: np.ndarray, size: int) -> torch.Tensor:
    """``[n, 1, S, S]`` masks in [0, 1]: a block or a line for some images, nothing for the rest."""
    n = len(d)
    use = rng.uniform(size=n) < OCCLUDE_P * d
    is_line = rng.uniform(size=n) < 0.5
    centre = rng.uniform(0.2, 0.8, (n, 2)) * size
    half = (0.5 + rng.uniform(0.5, 1.0, (n, 2)) * OCCLUDE_SIZE * d[:, None] * size / 2)
    angle = rng.uniform(0, np.pi, n)
    width = 0.6 + OCCLUDE_SIZE * d * rng.uniform(0.3, 1.0, n) * size / 8
    ys, xs = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    dy = ys[None] - centre[:, 0, None, None]
    dx = xs[None] - centre[:, 1, None, None]
    block = (np.abs(dy) <= half[:, 0, None, None]) & (np.abs(dx) <= half[:, 1, None, None])
    dist = np.abs(dx * np.sin(angle)[:, None, None] - dy * np.cos(angle)[:, None, None])
    line = np.clip(width[:, None, None] / 2 + 0.5 - dist, 0.0, 1.0)
    mask = np.where(is_line[:, None, None], line, block.astype(np.float64)) * use[:, None, None]
    return torch.from_numpy(mask.astype(np.float32)).unsqueeze(1)


def _colours(rng: np.random.Generator, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB ``[n, 3]``: a bright and a dark colour, drawn closer with d."""
    n = len(d)
    fg = rng.uniform(0.65, 1.0, (n, 3))
    bg = rng.uniform(0.0, 0.3, (n, 3))
    gap = 1.0 - CONTRAST * d * rng.uniform(0.5, 1.0, n)
    mid = (fg + bg) / 2
    return mid + (fg - mid) * gap[:, None], mid + (bg - mid) * gap[:, None]


def make_variants(digits: np.ndarray, pool: np.ndarray, n: int, size: int,
                  seed_key: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` variants of the source digits ``pool``: uint8 images, source indices, clutter
    source indices (-1: none) and difficulties.

    ``digits`` is float ``[1797, 8, 8]`` in [0, 1]; everything is drawn from
    ``np.random.default_rng(seed_key)`` and pasted clutter comes from ``pool`` too.
    """
    rng = np.random.default_rng(seed_key)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros((0, 3, size, size), np.uint8), empty, empty, np.zeros(0, np.float32)
    reps = -(-n // len(pool))
    source = np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]
    d = rng.beta(*DIFFICULTY_BETA, n)
    base = torch.from_numpy(digits[source].astype(np.float32)).unsqueeze(1)
    x = _warp(base, _affine(rng, d), size)
    x = _stroke(x, torch.from_numpy((rng.uniform(-1, 1, n) * STROKE * d).astype(np.float32))).clamp(0, 1)
    # clutter: a piece of another digit of the same pool, pushed towards an edge
    other = pool[rng.integers(0, len(pool), n)]
    piece = _warp(torch.from_numpy(digits[other].astype(np.float32)).unsqueeze(1),
                  _affine(rng, d, big_shift=True), size)
    alpha = (rng.uniform(size=n) < CLUTTER_P * d) * rng.uniform(0.5, 1.0, n) * CLUTTER_ALPHA
    x = torch.maximum(x, piece * torch.from_numpy(alpha.astype(np.float32)).view(-1, 1, 1, 1))
    occ = _occluders(rng, d, size)
    occ_level = torch.from_numpy(rng.uniform(0.0, 1.0, n).astype(np.float32)).view(-1, 1, 1, 1)
    x = x * (1 - occ) + occ_level * occ
    fg, bg = _colours(rng, d)
    fg_t = torch.from_numpy(fg.astype(np.float32)).view(-1, 3, 1, 1)
    bg_t = torch.from_numpy(bg.astype(np.float32)).view(-1, 3, 1, 1)
    rgb = bg_t + (fg_t - bg_t) * x
    noise = rng.standard_normal((n, 3, size, size)).astype(np.float32) * (NOISE * d).astype(np.float32)[:, None, None, None]
    rgb = rgb + torch.from_numpy(noise)
    images = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    clutter = np.where(alpha > 0, other, -1).astype(np.int64)
    return images, source.astype(np.int64), clutter, d.astype(np.float32)


def _source_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64) / 16.0, digits.target.astype(np.int64)


def _counts(cfg: DataConfig) -> dict[str, int]:
    return {"train": cfg.hard_train_images, "val": cfg.hard_val_images, "test": cfg.hard_test_images}


def generate(cfg: DataConfig, pools: dict[str, np.ndarray] | None = None) -> HardDigits:
    """Generate the whole data set in memory (no cache); ``pools`` default to :func:`source_split`."""
    digits, labels = _source_digits()
    if pools is None:
        train, val, test, _ = source_split(cfg, labels)
        pools = {"train": train, "val": val, "test": test}
    counts = {s: n if len(pools[s]) else 0 for s, n in _counts(cfg).items()}
    parts = {s: make_variants(digits, pools[s], counts[s], cfg.image_size,
                              [CONTENT_SEED, cfg.split_seed, SPLIT_CODES[s]]) for s in SPLIT_CODES}
    images = np.concatenate([parts[s][0] for s in SPLIT_CODES])
    source = np.concatenate([parts[s][1] for s in SPLIT_CODES])
    split = np.concatenate([np.full(counts[s], SPLIT_CODES[s], np.int8) for s in SPLIT_CODES])
    return HardDigits(images=images, labels=labels[source], source=source,
                      clutter=np.concatenate([parts[s][2] for s in SPLIT_CODES]),
                      difficulty=np.concatenate([parts[s][3] for s in SPLIT_CODES]), split=split,
                      params=_params(cfg, pools))


RECIPE_KEYS = ("DIFFICULTY_BETA", "ROTATION_DEG", "SCALE_LOG", "SCALE_SHRINK", "SHEAR", "TRANSLATE",
               "STROKE", "CLUTTER_P", "CLUTTER_ALPHA", "OCCLUDE_P", "OCCLUDE_SIZE", "CONTRAST", "NOISE")


def _params(cfg: DataConfig, pools: dict[str, np.ndarray]) -> dict:
    return {
        "dataset": NAME, "recipe_version": RECIPE_VERSION, "image_size": cfg.image_size,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in
                   ((k, globals()[k]) for k in RECIPE_KEYS)},
        "seed": cfg.split_seed, "counts": _counts(cfg),
        "pools": {s: stable_hash(p.tolist()) for s, p in pools.items()},
    }


# ------------------------------------------------------------------ the cache


KEYS = ("images", "labels", "source", "clutter", "difficulty", "split", "params")


def cache_path(cfg: DataConfig, params: dict) -> Path:
    """Where the arrays of these construction parameters are cached."""
    return Path(cfg.root) / NAME / f"{NAME}-s{cfg.image_size}-seed{cfg.split_seed}-{stable_hash(params)}.npz"


def _write(path: Path, data: HardDigits) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=data.images, labels=data.labels, source=data.source,
                     clutter=data.clutter, difficulty=data.difficulty, split=data.split,
                     params=np.asarray(json.dumps(data.params, sort_keys=True)))
    except OSError as exc:
        raise DataError(f"{path}: could not write the {NAME} cache ({exc.strerror or exc}); "
                        f"make data.root writable") from None


def _read(path: Path, params: dict) -> HardDigits:
    """The cached arrays; ``ValueError`` (why) when the file is unreadable or does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in KEYS}
    except Exception as exc:  # noqa: BLE001 - a corrupt zip/npy can fail in many ways
        raise ValueError(f"unreadable ({type(exc).__name__})") from None
    if json.loads(str(arrays["params"])) != json.loads(json.dumps(params, sort_keys=True)):
        raise ValueError("its construction parameters differ")
    n, s = sum(params["counts"].values()), params["image_size"]
    want = {"images": ((n, 3, s, s), np.uint8), "labels": ((n,), np.int64), "source": ((n,), np.int64),
            "clutter": ((n,), np.int64), "difficulty": ((n,), np.float32), "split": ((n,), np.int8)}
    for key, (shape, dtype) in want.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"'{key}' is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {shape}")
    return HardDigits(**{k: arrays[k] for k in KEYS if k != "params"}, params=params)


def load_arrays(cfg: DataConfig) -> tuple[HardDigits, str]:
    """The data set of ``cfg`` (read from its cache, or generated and cached) and its split file."""
    digits_labels = _source_digits()[1]
    train, val, test, split_file = source_split(cfg, digits_labels)
    pools = {"train": train, "val": val, "test": test}
    params = _params(cfg, pools)
    params["counts"] = {s: n if len(pools[s]) else 0 for s, n in params["counts"].items()}
    path = cache_path(cfg, params)
    if path.exists():
        try:
            return _read(path, params), split_file
        except ValueError as exc:
            warnings.warn(f"{path}: {exc}; regenerating it", stacklevel=2)
    data = generate(cfg, pools)
    data.params = params
    _write(path, data)
    return data, split_file


def load_digits_hard_bundle(cfg: DataConfig) -> DataBundle:
    """digits-hard: 10 classes, RGB, crop augmentation (no flip); statistics from train."""
    data, split_file = load_arrays(cfg)
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)

    def take(split: str) -> ArraySplit:
        return ArraySplit.take(images, labels, torch.from_numpy(data.index(split)))

    train = take("train")
    mean, std = channel_stats(train.images)
    has_val = bool((data.split == SPLIT_CODES["val"]).any())
    return DataBundle(
        name=NAME,
        num_classes=NUM_CLASSES,
        input_size=(3, cfg.image_size, cfg.image_size),
        mean=mean,
        std=std,
        crop_pad=max(1, cfg.image_size // 8),
        flip=False,
        train=train,
        val=take("val") if has_val else None,
        test=take("test"),
        split_file=split_file,
        class_names=CLASS_NAMES,
    )


__all__ = ["CLASS_NAMES", "HardDigits", "NAME", "generate", "load_arrays", "load_digits_hard_bundle",
           "make_variants", "source_split", "stratified_order"]
