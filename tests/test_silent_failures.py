"""Issue 19, "Nothing wrong passes silently": each case as it was found, now refused in one line
(or handled) instead of passing silently, losing a good output or running code from a data file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from msdnet.core.errors import ConfigError, DataError, MsdnetError

REPO = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- 4. nothing runs from a data file ---------------------------------------------------------------

class _Touch:
    """Unpickling this runs os.system("touch MARKER")."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_4_a_cifar_batch_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    from msdnet.data.cifar import _read_batch

    marker = tmp_path / "PWNED"
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1],
                                    b"trap": _Touch(str(marker))}, protocol=2))
    with pytest.raises(DataError) as exc:
        _read_batch(batch, b"labels", 10)
    msg = str(exc.value)
    assert not marker.exists()
    assert str(batch) in msg and "posix.system" in msg and "\n" not in msg
    # a real batch (numpy arrays, any protocol) still loads
    for proto in (2, 5):
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]},
                                       protocol=proto))
        images, labels = _read_batch(batch, b"labels", 10)
        assert tuple(images.shape) == (2, 3, 32, 32) and labels.tolist() == [0, 1]


# -- 8. few-epoch lr schedule ------------------------------------------------------------------------

def test_8_one_epoch_trains_at_the_full_lr_and_longer_schedules_are_unchanged():
    from msdnet.training.train import TrainConfig, lr_at, lr_milestones

    one = TrainConfig(epochs=1, lr=0.1)
    assert lr_milestones(one) == [1, 1]                 # was [0, 1]: lr/10 from the start
    assert lr_at(0, one) == pytest.approx(0.1)
    for epochs in range(2, 300):
        cfg = TrainConfig(epochs=epochs, lr=0.1)
        assert lr_milestones(cfg) == [round(m * epochs) for m in cfg.lr_milestones]
    assert lr_milestones(TrainConfig(epochs=8)) == [4, 6]    # the default preset
