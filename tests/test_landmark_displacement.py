"""ml/blender/landmark_displacement.py through its command line with the bpy module (real rig)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rigs import load_spec

pytestmark = pytest.mark.blender
SCRIPT = Path(__file__).resolve().parents[1] / "ml" / "blender" / "landmark_displacement.py"


def _table(size: int, out: Path) -> dict[str, tuple[float, float]]:
    cmd = [sys.executable, str(SCRIPT), "--", "--size", str(size), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.strip("|").split("|") for line in out.read_text().splitlines()[2:]]
    return {r[0].strip(): (float(r[2]), float(r[4])) for r in rows}


def test_every_au_and_identity_parameter_is_measured_in_pixels_and_iod(tmp_path):
    big, small = _table(128, tmp_path / "128.md"), _table(64, tmp_path / "64.md")
    spec = load_spec()
    names = {p.name for p in spec.params if p.group in ("au", "identity")}
    assert set(big) == names | {"all together"} == set(small)
    for name, (px, iod) in big.items():  # pixels scale with the crop, IOD fractions do not
        if px > 0.5:
            assert px / small[name][0] == pytest.approx(2.0, rel=0.05), name
            assert iod == pytest.approx(small[name][1], abs=0.005), name
    assert big["AU26"][1] > 0.25  # the jaw drop moves the chin by a quarter of the IOD
    assert big["all together"][0] > max(v[0] for k, v in big.items() if k.startswith("id_"))
