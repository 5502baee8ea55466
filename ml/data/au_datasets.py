"""AU-labelled datasets in their published layouts, for evaluation only (they are licensed;
users point the evaluation at their own copy).

DISFA (Mavadati et al. 2013), as distributed:

    ROOT/Videos_LeftCamera/LeftVideoSN001_comp.avi
    ROOT/ActionUnit_Labels/SN001/SN001_au1.txt      one "frame,intensity" line per frame
                                                    (frames from 1, intensity 0..5)

with labels for AU 1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25 and 26.

BP4D-Spontaneous with the FERA 2015 intensity labels:

    ROOT/Sequences/F001/T1/0001.jpg                 one image per frame (any zero padding)
    ROOT/AU_INT/AU06/F001_T1_AU06.csv               "frame,intensity" lines; 9 = not coded

with labels for AU 6, 10, 12, 14 and 17.

Both yield `Sample`s: the RGB frame, its intensities (NaN where not coded) and the
subject, streamed so memory stays flat.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from au_retarget_addon.core.video import VideoError, VideoReader

from ml.errors import MLError

DISFA_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25",
             "AU26")  # fmt: skip
BP4D_AUS = ("AU6", "AU10", "AU12", "AU14", "AU17")


class AUDatasetError(MLError, ValueError):
    """A dataset folder does not follow its published layout (names the file)."""


@dataclass
class Sample:
    subject: str
    frame: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    intensity: dict[str, float]  # AU code -> 0..5, NaN where not coded


def _labels(path: Path, missing: tuple[int, ...] = ()) -> dict[int, float]:
    """frame -> intensity from a "frame,intensity" text file."""
    out: dict[int, float] = {}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AUDatasetError(f"label file {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            frame, value = int(float(parts[0])), float(parts[1])
        except (IndexError, ValueError):
            msg = f"{path}, line {n}: expected 'frame,intensity', got {line!r}"
            raise AUDatasetError(msg) from None
        if value in missing:
            value = float("nan")
        elif not 0 <= value <= 5:
            raise AUDatasetError(f"{path}, line {n}: intensity {value} is outside 0..5")
        out[frame] = value
    return out


def disfa(root: str | Path, step: int = 1) -> Iterator[Sample]:
    """Every `step`-th frame of each left-camera video that has labels."""
    root = Path(root)
    label_root = root / "ActionUnit_Labels"
    if not label_root.is_dir():
        raise AUDatasetError(f"{root} is not a DISFA folder: no ActionUnit_Labels/")
    subjects = sorted(p.name for p in label_root.iterdir() if p.is_dir())
    if not subjects:
        raise AUDatasetError(f"{label_root} holds no subject folders (SN001, ...)")
    for sn in subjects:
        labels = {}
        for au in DISFA_AUS:
            path = label_root / sn / f"{sn}_{au.lower()}.txt"
            if not path.is_file():
                raise AUDatasetError(f"DISFA label file {path} is missing")
            labels[au] = _labels(path)
        video = root / "Videos_LeftCamera" / f"LeftVideo{sn}_comp.avi"
        try:
            reader = VideoReader(video)
        except VideoError as exc:
            raise AUDatasetError(f"DISFA subject {sn}: {exc}") from exc
        with reader:
            for idx, _t, image in reader.frames(0, None, step):
                frame = idx + 1  # DISFA counts frames from 1
                yield Sample(sn, frame, image, {au: labels[au].get(frame, np.nan) for au in labels})


def _frame_number(path: Path) -> int | None:
    m = re.fullmatch(r"0*(\d+)", path.stem)
    return int(m.group(1)) if m else None


def bp4d(root: str | Path, step: int = 1) -> Iterator[Sample]:
    """Every `step`-th labelled frame of each subject and task with intensity labels."""
    root = Path(root)
    au_root = root / "AU_INT"
    if not au_root.is_dir():
        raise AUDatasetError(f"{root} is not a BP4D folder: no AU_INT/")
    labels: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for au in BP4D_AUS:
        folder = au_root / f"AU{int(au[2:]):02d}"
        for path in sorted(folder.glob(f"*_AU{int(au[2:]):02d}.csv")):
            subject, task = path.name.split("_")[:2]
            labels.setdefault((subject, task), {})[au] = _labels(path, missing=(9,))
    if not labels:
        raise AUDatasetError(f"{au_root} holds no label files (AU06/F001_T1_AU06.csv, ...)")
    for (subject, task), per_au in sorted(labels.items()):
        folder = root / "Sequences" / subject / task
        images = {_frame_number(p): p for p in folder.glob("*.jpg")}
        if not images:
            raise AUDatasetError(f"BP4D images for {subject} {task} are missing: {folder}")
        frames = sorted(f for f in set().union(*per_au.values()) if f in images)
        for frame in frames[::step]:
            bgr = cv2.imread(str(images[frame]))
            if bgr is None:
                raise AUDatasetError(f"BP4D image {images[frame]} cannot be read")
            yield Sample(
                f"{subject}_{task}",
                frame,
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                {au: per_au.get(au, {}).get(frame, np.nan) for au in BP4D_AUS},
            )


LOADERS = {"disfa": disfa, "bp4d": bp4d}
