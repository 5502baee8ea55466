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


def _frames_to_images(out_dir, count: int, name: str = "frame_{:04d}.png", start: int = 1):
    """The sample video's first `count` frames as numbered PNG files."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    with VideoReader(MEDIA / "single_face.mp4") as v:
        for k, (_, _, rgb) in enumerate(v.frames(stop=count)):
            cv2.imwrite(str(out_dir / name.format(start + k)), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return out_dir


@pytest.mark.parametrize("form", ["folder", "printf", "one_file"])
def test_image_sequence_reads_like_the_video(tmp_path, form):
    from au_retarget_addon.core.video import ImageSequenceReader, open_frames

    folder = _frames_to_images(tmp_path / "shots", 12, start=8)  # frame_0008 .. frame_0019
    (folder / "notes.txt").write_text("not an image")
    path = {
        "folder": folder,
        "printf": folder / "frame_%04d.png",
        "one_file": folder / "frame_0008.png",
    }[form]
    with VideoReader(MEDIA / "single_face.mp4") as v:
        video = [img for _, _, img in v.frames(stop=12)]
    with open_frames(path, fps=24.0) as seq:
        assert isinstance(seq, ImageSequenceReader)
        assert (seq.info.frame_count, seq.info.width, seq.info.height) == (12, 640, 360)
        frames = list(seq.frames(start=2, step=3))
    assert [i for i, _, _ in frames] == [2, 5, 8, 11]
    assert [t for _, t, _ in frames] == pytest.approx([2 / 24, 5 / 24, 8 / 24, 11 / 24])
    for i, _, img in frames:  # PNG is lossless: the decoded video frame, bit for bit
        assert np.array_equal(img, video[i])


def test_image_sequence_orders_by_frame_number_and_defaults_to_30_fps(tmp_path):
    from au_retarget_addon.core.video import open_frames, sequence_files

    folder = _frames_to_images(tmp_path / "seq", 3, name="shot_{}.png", start=9)  # 9, 10, 11
    assert [f.name for f in sequence_files(folder)] == ["shot_9.png", "shot_10.png", "shot_11.png"]
    with open_frames(folder) as seq:
        assert seq.info.fps == 30.0
    assert sequence_files(MEDIA / "single_face.mp4") is None  # a video is no sequence


def test_image_sequence_errors_name_the_path_and_frame(tmp_path):
    from au_retarget_addon.core.video import open_frames

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="empty is a folder that holds no images"):
        open_frames(empty)
    with pytest.raises(VideoError, match=r"frame_%04d\.png matches no file"):
        open_frames(empty / "frame_%04d.png")
    folder = _frames_to_images(tmp_path / "broken", 3)
    (folder / "frame_0002.png").write_bytes(b"not a png")
    with open_frames(folder) as seq, pytest.raises(VideoError, match=r"frame 1 \(frame_0002"):
        list(seq.frames())
    with pytest.raises(VideoError, match="frame rate must be > 0"):
        open_frames(folder, fps=0.0)
