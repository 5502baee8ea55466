"""DISFA and BP4D loaders on small fixtures written in their published layouts, from real
frames of the sample video, and the evaluation command on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from au_retarget_addon.core.video import VideoReader
from ml.data.au_datasets import BP4D_AUS, DISFA_AUS, AUDatasetError, bp4d, disfa
from ml.eval import regressor as eval_regressor
from tests.conftest import MEDIA

FRAMES = 12


def _frames() -> list[np.ndarray]:
    with VideoReader(MEDIA / "single_face.mp4") as r:
        return [img for _, _, img in r.frames(0, FRAMES)]


def _value(au: str, frame: int) -> int:
    return (frame + int(au[2:])) % 6  # 0..5, different per AU and frame


@pytest.fixture(scope="module")
def disfa_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("DISFA")
    (root / "Videos_LeftCamera").mkdir()
    frames = _frames()
    h, w = frames[0].shape[:2]
    path = root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (w, h))
    for img in frames:
        out.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out.release()
    labels = root / "ActionUnit_Labels" / "SN001"
    labels.mkdir(parents=True)
    for au in DISFA_AUS:
        lines = [f"{f},{_value(au, f)}" for f in range(1, FRAMES + 1)]
        (labels / f"SN001_{au.lower()}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def bp4d_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("BP4D")
    seq = root / "Sequences" / "F001" / "T1"
    seq.mkdir(parents=True)
    for f, img in enumerate(_frames(), 1):
        cv2.imwrite(str(seq / f"{f:04d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    for au in BP4D_AUS:
        folder = root / "AU_INT" / f"AU{int(au[2:]):02d}"
        folder.mkdir(parents=True)
        rows = [f"{f},{9 if (au, f) == ('AU12', 3) else _value(au, f)}" for f in range(1, 11)]
        (folder / f"F001_T1_AU{int(au[2:]):02d}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_disfa_frames_and_labels_line_up(disfa_root):
    samples = list(disfa(disfa_root))
    assert [s.frame for s in samples] == list(range(1, FRAMES + 1))
    assert samples[0].image.shape == (360, 640, 3) and samples[0].subject == "SN001"
    for s in samples:
        assert s.intensity == {au: _value(au, s.frame) for au in DISFA_AUS}
    assert [s.frame for s in disfa(disfa_root, step=5)] == [1, 6, 11]


def test_bp4d_frames_labels_and_uncoded_values(bp4d_root):
    samples = list(bp4d(bp4d_root))
    assert [s.frame for s in samples] == list(range(1, 11))  # labelled frames only
    assert samples[0].subject == "F001_T1" and samples[0].image.shape == (360, 640, 3)
    assert np.isnan(samples[2].intensity["AU12"])  # 9 = not coded
    assert samples[3].intensity["AU6"] == _value("AU6", 4)


def test_layout_errors_name_the_file(disfa_root, tmp_path):
    import shutil

    broken = tmp_path / "DISFA"
    shutil.copytree(disfa_root, broken)
    (broken / "ActionUnit_Labels" / "SN001" / "SN001_au9.txt").unlink()
    with pytest.raises(AUDatasetError, match="SN001_au9.txt"):
        list(disfa(broken))
    (broken / "ActionUnit_Labels" / "SN001" / "SN001_au9.txt").write_text("1,0\n2,seven\n")
    with pytest.raises(AUDatasetError, match=r"SN001_au9.txt, line 2"):
        list(disfa(broken))
    with pytest.raises(AUDatasetError, match="not a BP4D folder"):
        list(bp4d(tmp_path))


@pytest.mark.parametrize("name", ["disfa", "bp4d"])
def test_evaluation_table_on_a_dataset(tiny_bundle, disfa_root, bp4d_root, name, capsys):
    root = disfa_root if name == "disfa" else bp4d_root
    argv = ["--bundle", str(tiny_bundle), "--dataset", name, "--pairs", str(root)]
    assert eval_regressor.main(argv) == 0
    out = capsys.readouterr().out
    aus = DISFA_AUS if name == "disfa" else BP4D_AUS
    assert "| metric | " + " | ".join(aus) + " | Avg |" in out
    assert f"{FRAMES if name == 'disfa' else 10} frames evaluated, 0 without a face" in out


def test_published_figures_print_beside_ours_marked_with_their_source(
    tiny_bundle, bp4d_root, tmp_path, capsys
):
    figures = tmp_path / "published.toml"  # made-up values: this test checks the layout only
    figures.write_text(
        'source = "test figures"\n[bp4d.icc]\nAU6 = 0.75\nAU12 = 0.5\naverage = 0.6\n'
        "[bp4d.mae]\nAU6 = 0.7\n"
    )
    argv = ["--bundle", str(tiny_bundle), "--dataset", "bp4d", "--pairs", str(bp4d_root)]
    assert eval_regressor.main([*argv, "--published", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "| ICC (test figures) | 0.75 | - | 0.50 | - | - | 0.60 |" in out
    assert "| MAE (test figures) | 0.70 | - | - | - | - | - |" in out
    assert f"published figures from {figures}, not measured here" in out

    figures.write_text('source = "x"\n[bp4d.icc]\nAU99 = 0.1\n')
    with pytest.raises(eval_regressor.EvalError, match=r"published\.toml.*AU99"):
        eval_regressor.main([*argv, "--published", str(figures)])
    figures.write_text('source = "x"\n[disfa.icc]\nAU1 = 0.1\n')
    with pytest.raises(eval_regressor.EvalError, match=r"need `source` and a \[bp4d\] table"):
        eval_regressor.main([*argv, "--published", str(figures)])
