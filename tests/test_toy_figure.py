"""Adding a figure is one registry entry, one table builder and one draw function (docs/howto.md):
a toy figure, registered here, is planned from a preset, keyed, collected by `msdnet collect` and
drawn by `msdnet figure`, with nothing else changed."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msdnet.cli import main
from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.figures import registry
from msdnet.figures.registry import FIGURES, LABEL_TO_MODEL, TABLES, FigureSpec, TableSpec
from msdnet.inference.predictions import Predictions, save
from msdnet.planning.runs import write_key
from msdnet.planning.workflow import plan

REPO = Path(__file__).resolve().parents[1]
CLASSES, IMAGES = 4, 40


# -- the three pieces a new figure needs ------------------------------------------------------

def toy_rows(section, src) -> pd.DataFrame:
    """The table builder: each model's last-exit top-1 % per seed, on the test split."""
    rows = []
    for label, name in section.items():
        for seed in src.seeds(name):
            test = src.load(name, seed, "test")
            top1 = 100.0 * float(np.mean(test.logits[-1].argmax(-1) == test.labels))
            rows.append({"model": label, "seed": seed, "accuracy": top1})
    return pd.DataFrame(rows, columns=["model", "seed", "accuracy"])


def draw_toy(tables, reference=None, title=None, options=None, sources=None):
    """The draw function: one bar per model (mean over seeds)."""
    from msdnet.figures import style

    df = tables["toy"]
    with style.theme():
        fig, (ax,) = style.new_figure()
        means = df.groupby("model", sort=False)["accuracy"].mean()
        ax.bar(range(len(means)), means.values, color=[style.colour(m) for m in means.index])
        ax.set_xticks(range(len(means)), [style.display_name(m) for m in means.index])
        ax.set_ylabel("top-1 %")
        ax.set_title(title or "toy")
    return fig


TOY = FigureSpec(
    id="toy", description="toy: last-exit top-1 % of each model",
    tables=(TableSpec("toy", f"{__name__}:toy_rows", lambda s: list(s.values()),
                      rows=lambda s: [("model", label, name) for label, name in s.items()]),),
    draw=f"{__name__}:draw_toy", schema=LABEL_TO_MODEL, macs_axis=False)


@pytest.fixture
def toy_registered(monkeypatch):
    """The registry entry (restored afterwards)."""
    monkeypatch.setattr(registry, "_ENTRIES", [*registry._ENTRIES, TOY])
    monkeypatch.setitem(FIGURES, "toy", TOY)
    monkeypatch.setitem(TABLES, "toy", (TOY, TOY.tables[0]))


def _preset():
    cfg = load_yaml(REPO / "config" / "tiny.yaml")
    cfg["figures"] = {"toy": {"MSDNet": "msdnet", "ResNet^MC": "resnet-mc"}}
    return cfg


def _predictions(root: Path, p, rng) -> dict[tuple[str, int], float]:
    """Predictions files where the preset plans them (under ``root``); the expected top-1 %."""
    expected = {}
    for name, seed in p.table_sources("toy"):
        labels = rng.integers(0, CLASSES, IMAGES)
        logits = rng.normal(size=(2, IMAGES, CLASSES)).astype(np.float32)
        right = rng.random(IMAGES) < 0.3 + 0.2 * len(expected)
        logits[-1, right, labels[right]] += 10.0             # these the last exit gets right
        for split in ("val", "test"):
            save(root / p.predictions_dir(name, seed) / f"{split}.npz", Predictions(
                logits=logits, labels=labels, exit_macs=np.array([1e5, 2e5]),
                sample_ids=np.arange(IMAGES), meta={"split": split, "model": name}))
        expected[(name, seed)] = 100.0 * float(np.mean(logits[-1].argmax(-1) == labels))
    return expected


def test_a_registered_figure_is_planned_collected_and_drawn(toy_registered, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)                              # a preset names its files from the root
    p = plan(_preset(), "config/tiny.yaml")
    assert list(p.figures) == ["toy"] and p.tables() == ["toy"]
    assert {n for n, _ in p.table_sources("toy")} == {"msdnet", "resnet-mc"}
    expected = _predictions(tmp_path, p, np.random.default_rng(0))
    table_key = write_key(tmp_path / p.table_key("toy"), p.table_spec("toy"))
    figure_key = write_key(tmp_path / p.figure_key("toy"), p.figure_spec("toy"))

    monkeypatch.chdir(tmp_path)                          # the project root of this toy run
    csv = Path(p.results) / "tables" / "toy.csv"
    assert main(["collect", "toy", "--key", str(table_key.relative_to(tmp_path)), "--out", str(csv)]) == 0
    df = pd.read_csv(csv)
    label = {"msdnet": "MSDNet", "resnet-mc": "ResNet^MC"}
    assert sorted(zip(df["model"], df["seed"], df["accuracy"])) == sorted(
        (label[n], s, pytest.approx(a)) for (n, s), a in expected.items())

    stem = Path(p.figures_dir) / "toy"
    assert main(["figure", "toy", "--table", str(csv), "--key", str(figure_key.relative_to(tmp_path)),
                 "--out", str(stem)]) == 0
    png = stem.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert stem.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"

    # the registry's rows: a table that lost a curve its spec names is refused, in one line
    df[df["model"] != "ResNet^MC"].to_csv(csv, index=False)
    capsys.readouterr()
    assert main(["figure", "toy", "--table", str(csv), "--key", str(figure_key.relative_to(tmp_path)),
                 "--out", str(stem)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ResNet^MC" in err


def test_the_registered_figure_s_section_is_checked_by_its_schema(toy_registered, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = _preset()
    bad = copy.deepcopy(cfg)
    bad["figures"]["toy"] = {"MSDNet": ["msdnet", "resnet-mc"]}     # a label names one model here
    with pytest.raises(ConfigError, match="toy"):
        plan(bad, "config/tiny.yaml")
    typo = copy.deepcopy(cfg)
    typo["figures"]["toy"] = {"MSDNet": "no-such-model"}
    with pytest.raises(ConfigError, match="no-such-model"):
        plan(typo, "config/tiny.yaml")


def test_without_its_entry_the_figure_does_not_exist(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert "toy" not in FIGURES and "toy" not in TABLES
    with pytest.raises(ConfigError, match="toy"):
        plan(_preset(), "config/tiny.yaml")
    with pytest.raises(SystemExit):
        main(["figure", "toy", "--table", "t.csv", "--out", "x"])
