"""The ``data:`` section of a run config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

DATASETS = ("digits", "digits-hard", "cifar10", "cifar100", "imagenet", "synthetic")


@dataclass(frozen=True)
class DataConfig:
    """Which data set to load and how to split it.

    Parse it with ``msdnet.core.config.from_dict(DataConfig, mapping, source)``: unknown keys, wrong
    types and bad values (see :meth:`validate`) become a ``ConfigError`` naming the source.

    Attributes:
        name: the data set.
        root: data sets live under ``root/<name>/`` (e.g. ``data/cifar10/cifar-10-batches-py``);
            held-out splits are saved under ``root/<name>/splits/``.
        imagenet_dir: ImageNet ImageFolder root holding ``train/`` and ``val/`` (imagenet only).
        val_size: held-out validation taken from the training set: an int is a number of
            images, a float in (0, 1) a share, 0 means no held-out split, None the data set's
            default (cifar: 5000, imagenet: 50000, digits and synthetic: 0.2). digits-hard:
            the share (or number) of the 1,797 source digits, not of the generated images.
        test_size: digits/digits-hard/synthetic only: share of all images (digits-hard: of the
            source digits) kept as the test split.
        image_size: digits/digits-hard/synthetic only: side of the square images.
        split_seed: seed of the permutation that fixes the held-out (and digits test) split.
        synthetic_images: synthetic only: number of random images.
        synthetic_classes: synthetic only: number of classes.
        hard_train_images, hard_val_images, hard_test_images: digits-hard only: number of
            generated images of each split (variants of that split's source digits; see
            ``msdnet.data.digits_hard`` and docs/data.md).
        holdout_indices: cifar10/cifar100/imagenet only: the authors' validation-indices file
            (``index.pth`` of kalviny/MSDNet-PyTorch, ``torch.save(torch.randperm(N))`` over the
            N training images); its last ``val_size`` entries are the held-out split, the rest
            train (``msdnet.data.splits.authors_split``). None: our seeded split.
        mean, std: cifar10/cifar100/imagenet only: fixed per-channel normalisation constants
            on the [0, 1] scale (the authors' codes use published constants). None: CIFAR's are
            computed from the training split, ImageNet's are the usual ImageNet constants.
        augment_holdout: cifar10/cifar100/imagenet only: the held-out (val) images get the
            training augmentation whenever they are read (the authors' PyTorch port takes them
            from the augmented training set); CIFAR's crops and flips are drawn from a generator
            seeded with 0 on every pass, ImageNet's by the loader. False: never augmented.

    Keys in ``OMIT_AT_DEFAULT`` were added after runs had been keyed: at their default they are
    left out of the config's dict (:func:`msdnet.core.config.compact_dict`), so the hashes and run keys
    of configs that do not set them stay what they were.
    """

    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("holdout_indices", "mean", "std", "augment_holdout")

    name: Literal["digits", "digits-hard", "cifar10", "cifar100", "imagenet", "synthetic"]
    root: str = "data"
    imagenet_dir: str | None = None
    val_size: int | float | None = None
    test_size: float = 0.2
    image_size: int = 32
    split_seed: int = 0
    synthetic_images: int = 512
    synthetic_classes: int = 10
    hard_train_images: int = 8000
    hard_val_images: int = 2000
    hard_test_images: int = 3000
    holdout_indices: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    augment_holdout: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message naming the bad key and the fix."""
        if self.name not in DATASETS:
            raise ValueError(f"key 'name': unknown data set {self.name!r}; use one of {', '.join(DATASETS)}")
        if not self.root:
            raise ValueError("key 'root': must be a non-empty directory path")
        if self.name == "imagenet" and not self.imagenet_dir:
            raise ValueError("key 'imagenet_dir': required for imagenet; "
                             "set it to the folder holding train/ and val/")
        v = self.val_size
        if isinstance(v, bool) or (v is not None and not isinstance(v, (int, float))):
            raise ValueError(f"key 'val_size': expected an int, a float share or null, got {v!r}")
        if isinstance(v, int) and v < 0:
            raise ValueError(f"key 'val_size': a number of images must be >= 0, got {v}")
        if isinstance(v, float) and not 0.0 <= v < 1.0:
            raise ValueError(f"key 'val_size': a share must be in [0, 1), got {v}")
        if not 0.0 < self.test_size < 1.0:
            raise ValueError(f"key 'test_size': a share must be in (0, 1), got {self.test_size}")
        if self.image_size < 8:
            raise ValueError(f"key 'image_size': must be >= 8, got {self.image_size}")
        if self.split_seed < 0:
            raise ValueError(f"key 'split_seed': must be >= 0, got {self.split_seed}")
        if self.synthetic_images < 3:
            raise ValueError(f"key 'synthetic_images': must be >= 3, got {self.synthetic_images}")
        if self.synthetic_classes < 2:
            raise ValueError(f"key 'synthetic_classes': must be >= 2, got {self.synthetic_classes}")
        if self.holdout_indices is not None:
            if self.name not in ("cifar10", "cifar100", "imagenet"):
                raise ValueError(f"key 'holdout_indices': the authors' validation indices are for "
                                 f"cifar10, cifar100 and imagenet, not {self.name}")
            if not self.holdout_indices or self.val_size == 0:
                raise ValueError("key 'holdout_indices': needs a file and a held-out split "
                                 "(val_size > 0 or null)")
        authors_sets = ("cifar10", "cifar100", "imagenet")
        if (self.mean is None) != (self.std is None):
            raise ValueError("keys 'mean' and 'std': give both (fixed constants) or neither "
                             "(computed / the data set's usual ones)")
        if self.mean is not None:
            if self.name not in authors_sets:
                raise ValueError(f"keys 'mean'/'std': fixed constants are for {', '.join(authors_sets)}, "
                                 f"not {self.name}")
            if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
                raise ValueError(f"keys 'mean'/'std': three values each (R, G, B on the [0, 1] scale), "
                                 f"std > 0; got {self.mean} and {self.std}")
        if self.augment_holdout and self.name not in authors_sets:
            raise ValueError(f"key 'augment_holdout': for {', '.join(authors_sets)}, not {self.name}")
        for key in ("hard_train_images", "hard_val_images", "hard_test_images"):
            if getattr(self, key) < (10 if key == "hard_train_images" else 1):
                raise ValueError(f"key '{key}': must be >= {10 if key == 'hard_train_images' else 1}, "
                                 f"got {getattr(self, key)}")
