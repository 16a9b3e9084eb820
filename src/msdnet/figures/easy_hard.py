"""Easy and hard images (the paper's ImageNet figure; any data set here): for a few classes, a
row each, images that leave correctly at the first classifier ("easy (exit 1)", left) and hard
images (right): those only the last classifier gets right or, for a class that has none, the
images of the class with the lowest confidence at the last exit (the column title says which).

Table: ``msdnet.evaluation.analysis.easy_hard.easy_hard_table``'s output, optionally completed by
:func:`add_fallback_hard`. Columns:
    sample_id        int    the image's id in the test split (``ArraySplit.ids``)
    label            int    its class
    kind             str    "easy" | "hard"
    confidence       float  optional: exit-1 confidence (easy shown most confident first, hard
                            least confident first, as the analysis orders them; shown above
                            each image)
    hard_by          str    optional, hard rows: "last_exit_only" (every exit but the last wrong,
                            the last right; the default when absent or empty) or
                            "last_exit_confidence" (the fallback: none of the class is
                            last-exit-only, these are its least confident images at the last
                            exit; marked with a dagger)
    last_confidence  float  optional: the last exit's confidence (shown for fallback images)

Images: the test split's uint8 ``[N, C, H, W]`` images (an array or tensor, or anything indexable
that gives one ``[C, H, W]`` image per index) and their ``ids`` (``load_data(cfg).test``).
Classes shown: ``labels`` when given, else up to ``max_classes`` classes that have both kinds
(smallest label first), filled up with classes that have only one kind; a missing kind in a row
reads "no easy image" / "no hard image" (a table completed by :func:`add_fallback_hard` has hard
images for every class that has test images). Rows are named by the data set's class names
where it has them (``msdnet.evaluation.images.load_test_images``, which ``msdnet figure``
uses: a figure never loads a data set), else "class k".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.errors import DataError
from . import style
from ..evaluation.analysis.easy_hard import add_fallback_hard  # noqa: F401  (re-exported)
from .common import check_table

ID = "easy-hard"
DEFAULT_TITLE = "Easy and hard images"
COLUMNS = ["sample_id", "label", "kind"]
KIND_TITLES = {"easy": "easy (exit 1)", "hard": "hard (only the last exit right)"}
HARD_BY = ("last_exit_only", "last_exit_confidence")
FALLBACK_MARK = "\u2020"           # dagger: a fallback hard image
HARD_TITLES = {
    "last_exit_only": KIND_TITLES["hard"],
    "last_exit_confidence": "hard (lowest confidence at the last exit;\nno image of these classes "
                            "is right only at the last exit)",
    "mixed": f"hard (only the last exit right;\n{FALLBACK_MARK} to fill the row: lowest "
             "confidence at the last exit)",
}


def hard_title(hard_by: Sequence[str]) -> str:
    """The hard column's title for the rules of the hard images shown."""
    rules = set(hard_by) or {"last_exit_only"}
    if rules == {"last_exit_confidence"}:
        return HARD_TITLES["last_exit_confidence"]
    return HARD_TITLES["mixed"] if len(rules) > 1 else HARD_TITLES["last_exit_only"]


def row_name(label: int, class_names: Sequence[str] | None) -> str:
    """A row's label: the class name where the data set has one (a name that is only the
    class number reads "class k")."""
    if class_names is not None and 0 <= label < len(class_names):
        name = str(class_names[label]).strip()
        if name and name != str(label):
            return name
    return f"class {label}"


def choose_classes(df: pd.DataFrame, max_classes: int) -> list[int]:
    """Up to ``max_classes`` labels: those with both kinds first, then those with one."""
    kinds = df.groupby("label")["kind"].agg(lambda k: set(k))
    both = sorted(int(lbl) for lbl, k in kinds.items() if len(k) == 2)
    one = sorted(int(lbl) for lbl, k in kinds.items() if len(k) == 1)
    return (both + one)[:max_classes]


def _hwc(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    img = np.asarray(img)
    if img.ndim == 2:
        return img, "gray"
    if img.shape[0] == 1:
        return img[0], "gray"
    return np.transpose(img[:3], (1, 2, 0)), None


def easy_hard_figure(table: pd.DataFrame, images, ids, labels: Sequence[int] | None = None,
                     max_classes: int = 4, per_kind: int = 4,
                     class_names: Sequence[str] | None = None, title: str | None = None,
                     source: str = "easy-hard table") -> Figure:
    """Rows of easy and hard test images per class (see the module docstring)."""
    if max_classes < 1 or per_kind < 1:
        raise DataError(f"need at least one class and one image per kind, got max_classes="
                        f"{max_classes}, per_kind={per_kind}")
    df = check_table(table, COLUMNS, source, numeric=["sample_id", "label"])
    df["sample_id"] = df["sample_id"].astype(np.int64)
    df["label"] = df["label"].astype(np.int64)
    df["kind"] = df["kind"].astype(str)
    bad = sorted(set(df["kind"]) - set(KIND_TITLES))
    if bad:
        raise DataError(f"{source}: column kind holds {bad[0]!r}; use easy or hard")
    if "hard_by" in df.columns:
        df["hard_by"] = df["hard_by"].where(df["hard_by"].notna(), "").astype(str).str.strip()
    else:
        df["hard_by"] = ""
    df.loc[(df["kind"] == "hard") & (df["hard_by"] == ""), "hard_by"] = "last_exit_only"
    bad = sorted(set(df.loc[df["kind"] == "hard", "hard_by"]) - set(HARD_BY))
    if bad:
        raise DataError(f"{source}: column hard_by holds {bad[0]!r}; use {' or '.join(HARD_BY)}")
    if "last_confidence" in df.columns:
        df["last_confidence"] = pd.to_numeric(df["last_confidence"], errors="coerce")
    if "confidence" in df.columns:
        df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce")
        df["_key"] = np.where(df["kind"] == "easy", -df["confidence"], df["confidence"])
        fallback = (df["hard_by"] == "last_exit_confidence").to_numpy()
        if "last_confidence" in df.columns:      # fallback images: least confident last first
            df["_key"] = np.where(fallback, df["last_confidence"], df["_key"])
        df["_fb"] = fallback
        df = df.sort_values(["label", "kind", "_fb", "_key", "sample_id"], kind="stable")
    if not hasattr(images, "__getitem__"):
        images = np.asarray(images)
    ids = np.asarray(ids).astype(np.int64)
    if getattr(images, "ndim", 4) != 4 or len(images) != len(ids):
        raise DataError(f"images must be [N, C, H, W] with one id each, got "
                        f"{getattr(images, 'shape', len(images))} and {len(ids)} ids")
    where = {int(i): n for n, i in enumerate(ids)}
    rows = [int(x) for x in labels] if labels is not None else choose_classes(df, max_classes)
    if not rows:
        raise DataError(f"{source}: no class to show")
    shown = {kind: {label: df[(df["label"] == label) & (df["kind"] == kind)].head(per_kind)
                    for label in rows} for kind in ("easy", "hard")}
    titles = {"easy": KIND_TITLES["easy"],
              "hard": hard_title([r for c in shown["hard"].values() for r in c["hard_by"]])}
    with style.theme():
        fig = Figure(figsize=(1.25 * per_kind * 2 + 1.0, 1.45 * len(rows) + 1.0), layout="constrained")
        panels = fig.subfigures(1, 2, wspace=0.04)
        for sub, kind in zip(panels, ("easy", "hard")):
            sub.suptitle(titles[kind], fontsize=10)
            axes = sub.subplots(len(rows), per_kind, squeeze=False)
            for r, label in enumerate(rows):
                chosen = shown[kind][label]
                for c in range(per_kind):
                    ax = axes[r][c]
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.grid(False)
                    for spine in ax.spines.values():
                        spine.set_visible(False)
                    if c == 0 and kind == "easy":
                        ax.set_ylabel(row_name(label, class_names), fontsize=9)
                    if c >= len(chosen):
                        if c == 0:
                            ax.text(0.5, 0.5, f"no {kind} image", transform=ax.transAxes,
                                    ha="center", va="center", fontsize=8, color="0.4")
                        continue
                    row = chosen.iloc[c]
                    sid = int(row["sample_id"])
                    if sid not in where:
                        raise DataError(f"{source}: sample_id {sid} is not in the test split's ids; "
                                        "is the data config the one the predictions were made on?")
                    img, cmap = _hwc(images[where[sid]])
                    ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
                    if row["hard_by"] == "last_exit_confidence":
                        last = row.get("last_confidence", np.nan)
                        ax.set_title(f"{FALLBACK_MARK} last {last:.2f}" if np.isfinite(last)
                                     else FALLBACK_MARK, fontsize=7)
                    elif "confidence" in chosen.columns and np.isfinite(row["confidence"]):
                        ax.set_title(f"conf {row['confidence']:.2f}", fontsize=7)
        fig.suptitle(DEFAULT_TITLE if title is None else title)
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point: ``options`` holds ``images``, ``ids`` and ``class_names`` of
    the test split, and optionally ``labels``, ``max_classes``, ``per_kind``."""
    o = dict(options or {})
    return easy_hard_figure(tables["easy_hard"], o["images"], o["ids"], labels=o.get("labels"),
                            max_classes=o.get("max_classes", 4), per_kind=o.get("per_kind", 4),
                            class_names=o.get("class_names"), title=title,
                            source=(sources or {}).get("easy_hard", "easy-hard table"))
