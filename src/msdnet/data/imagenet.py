"""ImageNet (ILSVRC-2012) from an ImageFolder tree: ``imagenet_dir/train/<class>/*`` and ``val/``.

Train: RandomResizedCrop(224) + horizontal flip; everything else (the held-out validation
split, the official validation set used as the test split, unaugmented training passes):
Resize(256) + CenterCrop(224). Both normalise with the ImageNet mean/std. The held-out split
(default 50000 images) is a ``Subset`` of a second view of the training folder that uses the
test transform, so validation images are never augmented (unless ``data.augment_holdout``:
then it uses the training transform, as the authors' PyTorch port did). ``data.mean``/``data.std``
replace the normalisation constants.
"""

from __future__ import annotations

import copy
from pathlib import Path

from torch.utils.data import Subset
from torchvision import datasets, transforms
from torchvision.datasets.vision import StandardTransform

from ..core.errors import DataError
from .bundle import DataBundle
from .config import DataConfig
from .splits import authors_split, fixed_split, resolve_count

DEFAULT_VAL = 50000
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def train_transform(mean=MEAN, std=STD) -> transforms.Compose:
    return transforms.Compose([
        transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean, std),
    ])


def test_transform(mean=MEAN, std=STD) -> transforms.Compose:
    return transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224),
        transforms.ToTensor(), transforms.Normalize(mean, std),
    ])


IMAGE_FIX = "replace or remove it, then run `msdnet data` again (it checks every image)"


def load_image(path: str):
    """An image file as RGB (ImageFolder's loader); a file PIL cannot read is one DataError line
    naming it, wherever it is met (msdnet data checks every image first: :func:`check_images`)."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:   # UnidentifiedImageError is an OSError
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}); {IMAGE_FIX}") from None


def check_image(path: str | Path) -> str | None:
    """Why ``path`` is not an image PIL can read, checked cheaply (non-empty, a header PIL
    identifies; no full decode), or None."""
    from PIL import Image

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "an empty file"
        with Image.open(path) as img:
            img.size                                   # parsed with the header
    except (OSError, ValueError, SyntaxError) as exc:
        return f"not a readable image ({type(exc).__name__})"
    return None


def check_images(folder: datasets.ImageFolder) -> None:
    """Every image of ``folder``, checked (:func:`check_image`); the first bad one is one
    DataError line naming it."""
    for path, _label in folder.samples:
        problem = check_image(path)
        if problem:
            raise DataError(f"{path}: {problem}; {IMAGE_FIX}")


def _folder(path: Path) -> datasets.ImageFolder:
    fix = "set data.imagenet_dir to the ImageNet root that holds train/ and val/ (one folder per class)"
    if not path.is_dir():
        raise DataError(f"{path} not found; {fix}")
    try:
        return datasets.ImageFolder(str(path), loader=load_image)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"{path}: not a usable ImageFolder ({exc}); {fix}") from None


def _view(folder: datasets.ImageFolder, transform: transforms.Compose) -> datasets.ImageFolder:
    """The same folder (sample list shared, no second directory scan) with another transform."""
    view = copy.copy(folder)
    view.transform = transform
    view.transforms = StandardTransform(transform, None)
    return view


def load_imagenet_bundle(cfg: DataConfig, check: bool = False) -> DataBundle:
    """ImageNet with a seeded held-out split of the training folder; splits are Datasets.
    ``check``: open every image's header first (:func:`check_images`; what msdnet data does)."""
    root = Path(cfg.imagenet_dir)
    scanned = _folder(root / "train")
    test = _folder(root / "val")
    if check:
        check_images(scanned)
        check_images(test)
    if test.classes != scanned.classes:
        raise DataError(f"{root / 'val'}: class folders differ from {root / 'train'}; "
                        f"use the same class folders in both")
    n_val = resolve_count(cfg.val_size, len(scanned), DEFAULT_VAL, "val_size")
    idx = (authors_split(cfg.holdout_indices, len(scanned), n_val) if cfg.holdout_indices
           else fixed_split(cfg.root, "imagenet", cfg.split_seed, len(scanned), n_val))
    mean, std = (tuple(cfg.mean), tuple(cfg.std)) if cfg.mean is not None else (MEAN, STD)
    plain = _view(scanned, test_transform(mean, std))
    augmented = _view(scanned, train_transform(mean, std))
    return DataBundle(
        name=cfg.name,
        num_classes=len(scanned.classes),
        input_size=(3, 224, 224),
        mean=mean,
        std=std,
        crop_pad=0,
        flip=True,
        train=Subset(augmented, idx.train.tolist()),
        val=Subset(augmented if cfg.augment_holdout else plain, idx.val.tolist()) if n_val else None,
        test=_view(test, test_transform(mean, std)),
        split_file=idx.file,
        train_plain=Subset(plain, idx.train.tolist()),
        augment_val=cfg.augment_holdout,
    )
