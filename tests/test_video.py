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


@pytest.mark.parametrize(
    "display, undo",
    [(90, "ROTATE_90_CLOCKWISE"), (-90, "ROTATE_90_COUNTERCLOCKWISE"), (180, "ROTATE_180")],
)
def test_rotation_metadata_is_applied(tmp_path, display, undo):
    """A phone-style video: the same stream with a display rotation in its container. The
    reader returns upright frames, which turned back equal the original frames exactly."""
    import subprocess

    import cv2
    import imageio_ffmpeg

    src, rotated = MEDIA / "single_face.mp4", tmp_path / f"rot{display}.mp4"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error"]
    cmd += ["-display_rotation", str(display), "-i", str(src), "-frames:v", "6", "-c", "copy"]
    subprocess.run([*cmd, str(rotated)], check=True)
    with VideoReader(src) as plain, VideoReader(rotated) as turned:
        assert turned.info.rotation == (-display) % 360
        if display % 180:
            assert (turned.info.width, turned.info.height) == (plain.info.height, plain.info.width)
        (_, _, a), (_, _, b) = next(plain.frames()), next(turned.frames())
    assert b.shape[:2] == (turned.info.height, turned.info.width)
    assert np.array_equal(cv2.rotate(b, getattr(cv2, undo)), a)  # the key frame, exactly
