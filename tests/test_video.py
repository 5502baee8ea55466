"""Video streaming through OpenCV on the sample clips."""

from __future__ import annotations

import numpy as np
import pytest

from au_retarget_addon.core.video import VideoError, VideoReader
from tests.conftest import MEDIA


def test_metadata_and_all_frames():
    with VideoReader(MEDIA / "single_face.mp4") as v:
        assert (v.info.width, v.info.height, v.info.frame_count) == (640, 360, 72)
        assert v.info.fps == pytest.approx(30.0) and v.info.rotation == 0
        frames = list(v.frames())
    assert len(frames) == 72
    idx, t, img = frames[-1]
    assert idx == 71 and t == pytest.approx(71 / 30) and img.shape == (360, 640, 3)
    assert img.dtype == np.uint8


def test_range_and_step_match_a_full_read():
    with VideoReader(MEDIA / "single_face.mp4") as v:
        full = {i: img for i, _, img in v.frames()}
    with VideoReader(MEDIA / "single_face.mp4") as v:
        part = list(v.frames(start=10, stop=40, step=7))
    assert [i for i, _, _ in part] == [10, 17, 24, 31, 38]
    for i, _, img in part:
        assert np.abs(img.astype(int) - full[i]).mean() < 1.0  # seeking decodes the same frame


def test_frames_stream_without_holding_the_video():
    """Memory stays flat: frames come one at a time from a generator."""
    with VideoReader(MEDIA / "no_face.mp4") as v:
        gen = v.frames()
        first = next(gen)
        assert first[0] == 0 and not isinstance(gen, list)


@pytest.mark.parametrize(
    "name,message",
    [("missing.mp4", "does not exist"), ("garbage.mp4", "cannot be opened|no frames")],
)
def test_bad_files_are_named(tmp_path, name, message):
    path = tmp_path / name
    if name == "garbage.mp4":
        path.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match=message) as err:
        VideoReader(path)
    assert name in str(err.value)


def test_bad_range_is_named():
    with VideoReader(MEDIA / "single_face.mp4") as v, pytest.raises(VideoError, match="range"):
        list(v.frames(start=5, stop=3))
