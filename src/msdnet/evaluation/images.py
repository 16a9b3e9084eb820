"""The test images of a data set, for what shows them: ``msdnet figure easy-hard`` (the figure
itself only draws the arrays it is given; figures never load data) and the notebooks
(:func:`msdnet.evaluation.notebooks.load_test_split`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import DataError


def load_test_images(data_yaml: str | Path):
    """(images uint8 [N, C, H, W], ids [N], class names or None) of a data config's test split;
    the names are the data set's (``DataBundle.class_names``, e.g. digits-hard's), else an image
    folder's class folders, else None.

    The file is a data summary (JSON, ``msdnet data --out``), or a YAML that holds the ``DataConfig`` keys (``{name: digits, image_size: 32, root: data}``) or is
    a recipe with a ``data:`` section. In-memory splits give their arrays; an image folder
    (ImageNet) gives a lazy reader of 224x224 centre crops.
    """
    from ..core.config import from_dict, load_yaml
    from ..data import DataConfig, load_data

    path = Path(data_yaml)
    if path.suffix == ".json":     # a data summary written by `msdnet data --out`
        import json

        try:
            raw = json.loads(path.read_text(encoding="utf-8"))["config"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise DataError(f"{path}: not a data summary; re-create it with `msdnet data ... --out`") from None
    else:
        raw = load_yaml(path)
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        raw = raw["data"]          # a recipe: use its data: section
    bundle = load_data(from_dict(DataConfig, raw, str(path)))
    test = bundle.test
    names = list(bundle.class_names) if getattr(bundle, "class_names", None) else None
    if hasattr(test, "images") and hasattr(test, "ids"):
        return np.asarray(test.images), np.asarray(test.ids), names
    samples = getattr(test, "samples", None)            # an ImageFolder (ImageNet)
    if samples is None:
        raise DataError(f"data config {path}: its test split holds no images this figure can read")
    return FolderImages(samples), np.arange(len(samples)), names or list(getattr(test, "classes", [])) or None


class FolderImages:
    """Images of an image folder, read on demand (224x224 centre crops, uint8 [C, H, W])."""

    def __init__(self, samples):
        self.samples = samples
        self.ndim = 4

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def shape(self):
        return (len(self.samples), 3, 224, 224)

    def __getitem__(self, i):
        from PIL import Image, ImageOps

        with Image.open(self.samples[i][0]) as im:
            im = ImageOps.fit(im.convert("RGB"), (224, 224))
            return np.transpose(np.asarray(im, dtype=np.uint8), (2, 0, 1))
