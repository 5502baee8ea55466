"""The real-face set tracked and cropped: faces linked into one track per person, each
track given to its person by seat, crops cached so a rerun decodes nothing, and the
recipe's real stage reading the training people only. Real video: talking_short.mp4 from
the fetched media (`make real-media`), the set's smallest clip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ml.data.face_tracks import link, summarise
from ml.data.real_face_set import (
    RealFaceSetError,
    build,
    crop_path,
    export,
    load_crops,
    provenance,
)
from ml.data.real_faces import RealFaces
from ml.data.real_media import SET_FILE, load_set
from ml.recipe import RecipeConfig, commands
from tests.conftest import REPO


def _boxes(cx: float, n: int, jitter: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(int(cx))
    c = cx + rng.normal(0, jitter, n)
    return np.stack([c - 40, np.full(n, 100.0), c + 40, np.full(n, 200.0)], 1)


def test_faces_that_stay_in_their_seats_each_make_one_track():
    n = 30
    frames = np.concatenate([np.arange(n), np.arange(n)])
    boxes = np.concatenate([_boxes(200, n), _boxes(600, n)])
    scores = np.concatenate([np.full(n, 0.99), np.full(n, 0.95)])
    keep = ~((frames >= 10) & (frames < 14) & (np.arange(2 * n) < n))  # left: 4 frames gone
    keep &= ~((frames >= 15) & (np.arange(2 * n) >= n))  # right: gone after frame 14
    frames, boxes, scores = frames[keep], boxes[keep], scores[keep]
    order = np.random.default_rng(0).permutation(len(frames))  # detection order is free
    ids = link(frames[order], boxes[order], scores[order], max_gap=6)
    tracks = summarise(ids, frames[order], boxes[order], width=800)
    assert [t.frames for t in tracks] == [26, 15]
    assert tracks[0].centre_x == pytest.approx(0.25, abs=0.01)
    assert tracks[1].centre_x == pytest.approx(0.75, abs=0.01) and tracks[1].last == 14


def test_a_face_lost_for_longer_than_the_gap_starts_a_new_track():
    frames = np.array([0, 1, 2, 12, 13])
    boxes = _boxes(300, 5, jitter=0.0)
    ids = link(frames, boxes, np.ones(5), max_gap=6)
    assert list(ids) == [0, 0, 0, 1, 1]


@pytest.fixture
def media_copy(real_media, tmp_path):
    """A private cache holding only talking_short.mp4, so nothing here touches the user's."""
    media = tmp_path / "cache" / "real_media"
    media.mkdir(parents=True)
    shutil.copy2(real_media / "talking_short.mp4", media)
    return media


def test_talking_short_is_one_person_tracked_through_the_clip(media_copy):
    rfs, cache = load_set(SET_FILE), media_copy.parent / "real_faces"
    manifest = build(rfs, media_copy, cache, sizes=(64,), clips=["talking_short"])
    clip = manifest["clips"]["talking_short"]
    assert clip["frames"] == 90 and clip["frames_with_a_face"] >= 0.95
    assert [t["person"] for t in clip["tracks"]] == ["franck"]
    assert manifest["people"]["franck"]["split"] == "train"
    z = load_crops(cache, 64, "talking_short", "franck")
    assert z["crops"].shape == (clip["people"]["franck"]["frames"], 64, 64, 3)
    assert np.all(np.diff(z["frames"]) > 0) and np.all(np.abs(z["rolls"]) < 30)
    assert z["times"][1] == pytest.approx(1 / 30)
    # the eyes of the aligned crop sit where the alignment template puts them: a face, not
    # background (the crop is brighter in the middle than in the corners)
    mid = z["crops"][:, 16:48, 16:48].mean()
    assert mid > 40 and z["crops"].std() > 10

    det = cache / "detections" / "talking_short.npz"
    stamps = [det.stat().st_mtime_ns, crop_path(cache, 64, "talking_short", "franck").stat()]
    build(rfs, media_copy, cache, sizes=(64,), clips=["talking_short"])  # cached: no decode
    assert det.stat().st_mtime_ns == stamps[0]
    assert crop_path(cache, 64, "talking_short", "franck").stat().st_mtime_ns == (
        stamps[1].st_mtime_ns
    )

    out = cache.parent / "train.npz"
    n = export(rfs, cache, "train", 64, 3, out, clips=["talking_short"])
    assert n == len(RealFaces(out, "all")) == len(z["crops"][::3])
    with np.load(out) as e:
        names = list(e["names"])
    assert names[0] == "talking_short#0@franck"
    (src,) = provenance(names, rfs)
    assert src["people"] == ["franck"] and "FG-net" in src["footage_terms"]
    assert src["package_licence"].startswith("MIT")
    with pytest.raises(RealFaceSetError, match="heldout split has no crops"):
        export(rfs, cache, "heldout", 64, 1, out, clips=["talking_short"])


def test_the_recipe_real_stage_reads_the_training_people(media_copy, tmp_path):
    cfg = RecipeConfig(work=str(tmp_path / "work"))
    cfg.pairs.size, cfg.real.clips, cfg.real.step = 64, ["talking_short"], 10
    cmd = commands(cfg)["real"]
    assert cmd[1:5] == ["-m", "ml.data.real_face_set", "export", "--split"] and "train" in cmd
    env = {**os.environ, "AURT_CACHE": str(media_copy.parent)}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    faces = RealFaces(tmp_path / "work" / "real_faces.npz", "all")
    assert len(faces) == 9 and faces[0]["image"].shape == (3, 64, 64)


def test_build_errors_are_one_line(tmp_path):
    cmd = [sys.executable, "-m", "ml.data.real_face_set", "--cache", str(tmp_path / "c")]
    cmd += ["--media", str(tmp_path / "m"), "build", "--clips", "nobody"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "python -m ml.data.real_face_set: error: unknown clip(s) ['nobody']; known: "
        "['cap12_edit', 'cap13_edit2', 'franck', 'multispeaker', 'talking_short']"
    ]
