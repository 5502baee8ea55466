"""Every input a user can give the command-line tracker ends in a result or one clear
line: the exit code, a message that names the input, never a traceback, nothing written
where it failed. The bad inputs are made here (tests/bad_media.py); the model is the
shipped default, the detector the real MTCNN."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from au_retarget_addon.core.bundle import BundleError, ModelBundle
from au_retarget_addon.core.files import OutputError, atomic_bytes, check_output
from tests import bad_media
from tests.conftest import MEDIA

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "au_retarget_addon" / "models" / "default"
SAMPLE = MEDIA / "single_face.mp4"


def track(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "au_retarget_addon.core", "track", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, env=env)


def refused(res: subprocess.CompletedProcess, *names: str, code: int = 2) -> str:
    """The run ended with `code`, one error line naming each of `names`, no traceback."""
    err = res.stderr
    assert res.returncode == code, (res.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err[-3000:]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_media")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    whole = SAMPLE.read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 3])  # its index is at the end
    (d / "folder.mp4").mkdir()
    return {
        "empty": d / "empty.mp4",
        "garbage": d / "garbage.mp4",
        "truncated": d / "truncated.mp4",
        "folder": d / "folder.mp4",
        "black": bad_media.black(d / "black.avi"),
        "upside_down": bad_media.upside_down(d / "upside_down.avi"),
        "sideways": bad_media.sideways(d / "sideways.avi"),
        "tiny": bad_media.tiny_face(d / "tiny.avi"),
        "cut_short": bad_media.cut_short(d / "cut_short.avi"),
    }


def _bundle_with(tmp_path: Path, card: object | None = None, onnx: bytes | None = None) -> Path:
    b = tmp_path / "bundle"
    shutil.copytree(DEFAULT, b)
    if card is not None:
        (b / "model_card.json").write_text(json.dumps(card))
    if onnx is not None:
        (b / "model.onnx").write_bytes(onnx)
    return b


# --- videos -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, says",
    [
        ("missing", "does not exist"),
        ("folder", "is a folder that holds no images"),
        ("empty", "cannot be opened"),
        ("garbage", "cannot be opened"),
        ("truncated", "cannot be opened"),
        ("black", "no face found"),
        ("upside_down", "upside down"),
        ("sideways", "sideways"),
        ("tiny", "face too small"),
    ],
)
def test_unusable_videos_get_one_line(media, tmp_path, case, says):
    video = media.get(case, tmp_path / "missing.mp4")
    out = tmp_path / "tracks.csv"
    line = refused(track(str(video), "--model", str(DEFAULT), "--out", str(out)), str(video))
    assert says in line
    assert not out.exists() and not list(tmp_path.glob(".tracks*"))


def test_a_file_cut_short_is_tracked_and_said_so(media, tmp_path):
    out = tmp_path / "tracks.csv"
    res = track(str(media["cut_short"]), "--model", str(DEFAULT), "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ended at frame 12 of the 24" in res.stderr and "cut short" in res.stderr
    assert len(list(csv.reader(out.open()))) == 1 + 12


def test_dropped_and_filled_frames_are_counted_apart(media, tmp_path):
    """Frames the gate refuses are frames without a face; interpolated ones are not
    counted as faces."""
    frames = bad_media.sample_frames(12)
    frames[4:8] = [np.ascontiguousarray(f[::-1, ::-1]) for f in frames[4:8]]  # upside down
    video = bad_media.write_video(tmp_path / "mixed.avi", frames)
    out = tmp_path / "tracks.csv"
    res = track(str(video), "--model", str(DEFAULT), "--out", str(out), "--missing",
                "interpolate")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "a face in 8; dropped 4 (4 upside down); 4 filled in" in res.stdout
    rows = list(csv.reader(out.open()))[1:]
    assert [float(r[2]) > 0 for r in rows] == [True] * 4 + [False] * 4 + [True] * 4


def test_variable_frame_rate_keeps_the_container_times(tmp_path):
    gaps = [33] * 5 + [150] * 4 + [20] * 6
    video, times = bad_media.variable_rate(tmp_path / "vfr.mp4", gaps)
    out = tmp_path / "tracks.csv"
    res = track(str(video), "--model", str(DEFAULT), "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    got = [float(r[1]) for r in list(csv.reader(out.open()))[1:]]
    assert np.allclose(got, times, atol=1.5e-3), (got, times)
    import cv2

    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)  # the container's average
    by_index = np.arange(len(times)) / fps
    assert np.abs(by_index - times).max() > 0.2  # what index / frame rate would have given


# --- models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card, field",
    [
        (None, "not a model card"),
        (3, "not a model card"),
        ({"spec_hash": "x", "outputs": ["a"]}, "'input'"),
        ("no_size", "input.size"),
        ("string_size", "input.size"),
        ("bad_std", "input.std"),
        ("outputs_not_names", "outputs"),
    ],
)
def test_a_card_that_is_not_a_card_names_file_and_field(tmp_path, card, field):
    real = json.loads((DEFAULT / "model_card.json").read_text())
    if card == "no_size":
        card = {**real, "input": {k: v for k, v in real["input"].items() if k != "size"}}
    elif card == "string_size":
        card = {**real, "input": {**real["input"], "size": "128"}}
    elif card == "bad_std":
        card = {**real, "input": {**real["input"], "std": [0.2, 0.0, 0.2]}}
    elif card == "outputs_not_names":
        card = {**real, "outputs": [1, 2]}
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=field) as err:
        ModelBundle(bundle)
    assert "model_card.json" in str(err.value)
    res = track(str(SAMPLE), "--model", str(bundle), "--out", str(tmp_path / "t.csv"))
    assert field in refused(res, "model_card.json")


def test_a_file_where_a_folder_belongs_is_called_a_file(tmp_path):
    out = str(tmp_path / "t.csv")
    model = DEFAULT / "model.onnx"
    assert "is a file" in refused(track(str(SAMPLE), "--model", str(model), "--out", out),
                                  str(model))  # fmt: skip
    res = track(str(SAMPLE), "--model", str(DEFAULT), "--detector", str(model), "--out", out)
    assert "is a file, not a folder" in refused(res, str(model))


def test_corrupt_onnx_and_missing_cuda_name_the_input(tmp_path):
    bundle = _bundle_with(tmp_path, onnx=b"\x08\x01garbage")
    out = str(tmp_path / "t.csv")
    refused(track(str(SAMPLE), "--model", str(bundle), "--out", out), "model.onnx")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        res = track(str(SAMPLE), "--model", str(DEFAULT), "--out", out, "--device", "cuda")
        refused(res, "CUDA")


# --- arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, says",
    [
        (["--step", "0"], "--step"),
        (["--step", "x"], "--step"),
        (["--neutral", "abc"], "--neutral"),
        (["--neutral", "-3"], "--neutral"),
        (["--start", "-1"], "--start"),
        (["--face", "-1"], "--face"),
        (["--threads", "-2"], "--threads"),
        (["--min-cutoff", "0"], "--min-cutoff"),
        (["--start", "10", "--stop", "5"], "end frame 4 is before start frame 10"),
        (["--start", "500"], "start frame 500 is beyond the end"),
        (["--neutral", "500"], "neutral frame 500 is not among the tracked frames"),
        (["--neutral", "3", "--step", "2"], "neutral frame 3 is not among the tracked frames"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, args, says):
    out = tmp_path / "t.csv"
    res = track(str(SAMPLE), "--model", str(DEFAULT), "--out", str(out), *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert says in res.stderr and "frame/s" not in res.stderr and "0frame" not in res.stderr
    assert not out.exists()


def test_face_beyond_the_faces_there_is_said(tmp_path):
    out = tmp_path / "t.csv"
    res = track(str(SAMPLE), "--model", str(DEFAULT), "--out", str(out), "--face", "3",
                "--stop", "6")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "face 3 asked for, but the first frame with faces has 1: following face 0" in (
        res.stderr
    )


# --- outputs ----------------------------------------------------------------------------


def test_read_only_folder_is_refused_before_tracking():
    """As an ordinary user (root writes anywhere: the test then runs the tracker as
    nobody through setpriv, in a folder nobody can reach)."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="aurt_ro_"))
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: a read-only folder is writable")
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    cmd = [*as_user, sys.executable, "-m", "au_retarget_addon.core", "track", str(SAMPLE),
           "--model", str(DEFAULT), "--out", str(ro / "t.csv")]  # fmt: skip
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        assert "not writable" in refused(res, str(ro / "t.csv"))
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize("case", ["parent_is_file", "is_folder", "suffix"])
def test_output_paths_that_cannot_be_written_are_refused_first(tmp_path, case):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir.csv").mkdir()
    out, says = {
        "parent_is_file": (tmp_path / "file.txt" / "t.csv", "is a file, not a folder"),
        "is_folder": (tmp_path / "dir.csv", "is a folder"),
        "suffix": (tmp_path / "t.json", ".csv or .npz"),
    }[case]
    t = time.perf_counter()
    res = track(str(SAMPLE), "--model", str(DEFAULT), "--out", str(out))
    assert says in refused(res, str(out))
    assert "frame" not in res.stderr.replace("frames", "")  # refused before tracking started
    assert time.perf_counter() - t < 60


def test_upper_case_suffix_and_umask_are_honoured(tmp_path):
    out = tmp_path / "T.CSV"
    cmd = [sys.executable, "-m", "au_retarget_addon.core", "track", str(SAMPLE), "--model",
           str(DEFAULT), "--out", str(out), "--stop", "4"]  # fmt: skip
    res = subprocess.run(
        ["sh", "-c", 'umask 002 && exec "$@"', "sh", *cmd], capture_output=True, text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert stat.S_IMODE(out.stat().st_mode) == 0o664
    assert list(csv.reader(out.open()))[0][:2] == ["frame", "time"]


def test_check_output_and_atomic_files(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_bytes(tmp_path / "a.bin", b"x")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    assert check_output(tmp_path / "new" / "x.npz", (".npz",)).parent.is_dir()


def test_a_late_write_failure_keeps_the_tracks(tmp_path):
    from au_retarget_addon.core.__main__ import _write
    from au_retarget_addon.core.tracks import Tracks

    tracks = Tracks(np.arange(2), np.arange(2) / 30, ["AU12_L"], np.ones((2, 1)),
                    np.ones(2), 30.0)  # fmt: skip
    gone = tmp_path / "gone" / "t.csv"  # its folder is removed after the check
    with pytest.raises(OutputError, match=r"gone/t\.csv could not be written") as err:
        _write(tracks, gone)
    kept = Path(str(err.value).rsplit("kept in ", 1)[1])
    assert kept.is_file() and list(csv.reader(kept.open()))[1][0] == "0"
    shutil.rmtree(kept.parent)


def test_ctrl_c_stops_cleanly_and_writes_nothing(tmp_path):
    out = tmp_path / "t.csv"
    cmd = [sys.executable, "-m", "au_retarget_addon.core", "track", str(SAMPLE), "--model",
           str(DEFAULT), "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.time() + 120
    seen = ""
    while time.time() < deadline and "frame" not in seen:  # the progress bar has started
        time.sleep(0.2)
        if proc.poll() is not None:
            break
        seen += _peek(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted; nothing was written" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def _peek(proc: subprocess.Popen) -> str:
    """What the process has written to stderr so far (non-blocking)."""
    import select

    assert proc.stderr is not None
    got = ""
    while select.select([proc.stderr], [], [], 0)[0]:
        chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        if not chunk:
            break
        got += chunk
    return got
