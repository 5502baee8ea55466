"""Face detection with 5 points: the MTCNN cascade (PNet, RNet, ONet) on onnxruntime.

The networks are exported by `python -m ml.nets.mtcnn fetch` (weights from facenet-pytorch
2.6.0); this module is the runtime and needs only numpy, OpenCV and onnxruntime, so it
runs inside Blender. The pipeline follows the original MTCNN (and facenet-pytorch, which
these weights were converted for): an image pyramid through PNet, then RNet and ONet on
square crops, with box regression and non-maximum suppression after each stage. Crops
reaching past the image border are zero-padded as in the original, not clamped.

`FaceDetector.refine` skips the pyramid: it runs RNet and ONet on the previous frame's
box, which is what a video tracker needs on most frames.

Coordinates: outputs use OpenCV's convention (pixel centres at integers). A box
(x1, y1, x2, y2) bounds pixel areas, so a box around the whole image would be
(-0.5, -0.5, W - 0.5, H - 0.5). Internally boxes stay in MTCNN's 1-based inclusive form,
the one its regression targets were trained in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .providers import ProviderError, checked, execution_providers

log = logging.getLogger(__name__)

MODEL_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")
# Inside the add-on, so a source checkout and the installed extension find it alike;
# `make weights` (python -m ml.nets.mtcnn fetch) writes it, the packaging copies it.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "mtcnn"
# ONet's landmark order is image-left eye, image-right eye, nose, image-left mouth corner,
# image-right mouth corner for an upright face: the order align.py expects. Kept as an
# explicit index so a change of either side is one edit (and a face rolled past 90 degrees
# keeps its anatomical order rather than being re-sorted by x).
ONET_TO_OURS = np.array([0, 1, 2, 3, 4])
_PNET_CELL, _PNET_STRIDE = 12, 2


class DetectorError(RuntimeError):
    """A detector model is missing or unreadable (names the file), or the input is invalid."""


@dataclass(frozen=True)
class DetectorConfig:
    """MTCNN settings; the defaults are the published ones."""

    min_face_size: float = 20.0  # pixels; larger is faster (fewer pyramid levels)
    factor: float = 0.709  # pyramid step, about 1/sqrt(2): halves the area per level
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # PNet, RNet, ONet
    threads: int = 0  # onnxruntime intra-op threads; 0 = onnxruntime's default
    # Busy-waiting worker threads win a little on an idle machine but starve Blender's UI
    # and other jobs: with one other busy process on 2 cores, spinning made detection 4x
    # slower (35 -> 150 ms per 640x360 frame).
    spin_wait: bool = False
    device: str = "auto"  # auto (CUDA when it can run, else CPU), cpu or cuda
    providers: tuple[str, ...] | None = None  # explicit onnxruntime providers; None: `device`


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class Detection:
    """One face: box (x1, y1, x2, y2), ONet face probability, 5 points (x, y) in our order."""

    box: np.ndarray = field(repr=False)  # (4,) float64
    score: float
    points: np.ndarray = field(repr=False)  # (5, 2) float64


def _providers(cfg: DetectorConfig) -> list[str]:
    """The config's providers (explicit list, else chosen for its device), checked to run."""
    try:
        if cfg.providers:
            return checked(cfg.providers)
        return execution_providers(cfg.device)
    except ProviderError as exc:
        raise DetectorError(f"MTCNN detector: {exc}") from exc


def _session(path: Path, cfg: DetectorConfig, providers: list[str]) -> Any:
    """One onnxruntime session; every failure becomes a DetectorError naming the file."""
    import onnxruntime as ort

    if not path.is_file():
        raise DetectorError(
            f"MTCNN model missing: {path} (make it with `python -m ml.nets.mtcnn fetch --out "
            f"{path.parent}`)"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cfg.threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if cfg.spin_wait else "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise DetectorError(f"cannot read MTCNN model {path}: {exc}") from exc


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise DetectorError(f"need an RGB image of shape (H, W, 3), got {shape}")
    if image.dtype != np.uint8:
        raise DetectorError(f"need a uint8 image, got {image.dtype}")
    return np.ascontiguousarray(image)


def _normalise(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W) in MTCNN's scaling, (x - 127.5) / 128."""
    x = (batch_hwc.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _run(session: Any, outputs: tuple[str, ...], batch_hwc: np.ndarray) -> list[np.ndarray]:
    """Named outputs of one network on a uint8 (B, H, W, 3) batch."""
    return session.run(list(outputs), {"image": _normalise(batch_hwc)})


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales at which PNet's 12 px window sees faces from `min_face` px to the image size."""
    scale = _PNET_CELL / min_face
    side = min(height, width) * scale
    scales = []
    while side >= _PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def nms(boxes: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression on (N, >=5) rows [x1, y1, x2, y2, score, ...];
    overlap is IoU ("union") or intersection over the smaller box ("min"). Returns
    kept row indices, best first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-score, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (RNet and ONet take square crops)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + 0.5 * (w - side)
    out[:, 1] = boxes[:, 1] + 0.5 * (h - side)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply RNet/ONet box regression (offsets in units of the inclusive box size)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return out


def crop_resized(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, size, size, 3) crops of the 1-based inclusive boxes, zero outside the image."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (bx1, by1, bx2, by2) in enumerate(np.floor(boxes[:, :4]).astype(np.int64)):
        x0, y0, x1, y1 = bx1 - 1, by1 - 1, bx2, by2  # 0-based, end exclusive
        patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _usable(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes at least 1 px wide and tall that overlap the image (others cannot be cropped)."""
    x1, y1, x2, y2 = (np.floor(boxes[:, i]) for i in range(4))
    ok = (x2 >= x1) & (y2 >= y1) & (x2 >= 1) & (y2 >= 1) & (x1 <= width) & (y1 <= height)
    return boxes[ok]


def pnet_boxes(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """PNet map cells above threshold -> (N, 9) rows [x1, y1, x2, y2, score, reg(4)] in
    image pixels (1-based inclusive): each cell is a 12 px window at stride 2."""
    ys, xs = np.nonzero(prob >= threshold)
    cells = np.stack([xs, ys], axis=1).astype(np.float64)
    q1 = np.floor((_PNET_STRIDE * cells + 1) / scale)
    q2 = np.floor((_PNET_STRIDE * cells + _PNET_CELL) / scale)
    return np.concatenate([q1, q2, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)


def to_image_coords(boxes: np.ndarray) -> np.ndarray:
    """MTCNN 1-based inclusive boxes -> OpenCV areas (pixel centres at integers)."""
    return boxes[:, :4] - np.array([1.5, 1.5, 0.5, 0.5])


def from_image_coords(box: np.ndarray) -> np.ndarray:
    """Inverse of `to_image_coords` for one box: (4,) -> (1, 5) row with score 0."""
    b = np.asarray(box, dtype=np.float64).reshape(4) + np.array([1.5, 1.5, 0.5, 0.5])
    return np.concatenate([b, [0.0]])[None, :]


class FaceDetector:
    """MTCNN on onnxruntime: `detect` for a full search, `refine` to follow a known face."""

    def __init__(self, model_dir: str | Path, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        model_dir = Path(model_dir)
        if model_dir.is_file():
            raise DetectorError(f"MTCNN folder {model_dir} is a file, not a folder")
        chosen = _providers(self.config)
        sessions = [_session(model_dir / name, self.config, chosen) for name in MODEL_FILES]
        self.pnet, self.rnet, self.onet = sessions
        log.debug("MTCNN from %s on %s", model_dir, self.pnet.get_providers())

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image, best score first."""
        image = _check_image(image)
        boxes = self._proposals(image)
        boxes = self._refine_stage(image, boxes)
        return self._output_stage(image, boxes)

    def refine(self, image: np.ndarray, previous_box: np.ndarray) -> Detection | None:
        """The face near `previous_box` (a Detection.box from a nearby frame), from RNet and
        ONet only; None when either stage's score falls below its threshold (track lost)."""
        image = _check_image(image)
        boxes = self._refine_stage(image, square(from_image_coords(previous_box)))
        found = self._output_stage(image, boxes)
        return found[0] if found else None

    def _proposals(self, image: np.ndarray) -> np.ndarray:
        """Stage 1: PNet over the pyramid -> square candidate boxes (N, 5)."""
        h, w = image.shape[:2]
        cfg = self.config
        per_scale = []
        for scale in pyramid_scales(h, w, cfg.min_face_size, cfg.factor):
            size = (math.ceil(w * scale), math.ceil(h * scale))
            level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            reg, prob = _run(self.pnet, ("reg", "prob"), level[None])
            found = pnet_boxes(prob[0, 1], reg[0], scale, cfg.thresholds[0])
            per_scale.append(found[nms(found, 0.5)])
        if not per_scale:
            return np.zeros((0, 5))
        boxes = np.concatenate(per_scale)
        boxes = boxes[nms(boxes, 0.7)]
        # PNet's regression is relative to the exclusive size, unlike RNet's and ONet's.
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes[:, :4] += boxes[:, 5:9] * np.stack([bw, bh, bw, bh], axis=1)
        return square(boxes[:, :5])

    def _refine_stage(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: RNet on 24 px crops -> rescored, regressed, square boxes (N, 5)."""
        boxes = _usable(boxes, *image.shape[:2])
        if len(boxes) == 0:
            return boxes
        reg, prob = _run(self.rnet, ("reg", "prob"), crop_resized(image, boxes, 24))
        keep = prob[:, 1] > self.config.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        pick = nms(boxes, 0.7)
        return square(regress(boxes[pick], reg[keep][pick]))

    def _output_stage(self, image: np.ndarray, boxes: np.ndarray) -> list[Detection]:
        """Stage 3: ONet on 48 px crops -> final boxes, scores and 5 points."""
        boxes = _usable(boxes, *image.shape[:2])
        if len(boxes) == 0:
            return []
        crops = crop_resized(image, boxes, 48)
        reg, marks, prob = _run(self.onet, ("reg", "landmarks", "prob"), crops)
        keep = prob[:, 1] > self.config.thresholds[2]
        boxes, reg, marks = boxes[keep], reg[keep], marks[keep]
        boxes[:, 4] = prob[keep, 1]
        points = _landmarks(boxes, marks)
        boxes = regress(boxes, reg)
        pick = nms(boxes, 0.7, mode="min")
        corners = to_image_coords(boxes)
        return [Detection(corners[i], float(boxes[i, 4]), points[i]) for i in pick]


def _landmarks(boxes: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """ONet's normalised landmarks (5 x then 5 y) -> (N, 5, 2) image points in our order.

    The mapping is facenet-pytorch's: first pixel of the crop + fraction x box size, the
    form its training labels were normalised in (sub-pixel conventions are well below
    MTCNN's landmark accuracy)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = boxes[:, 0:1] - 1 + marks[:, :5].astype(np.float64) * w[:, None]
    ys = boxes[:, 1:2] - 1 + marks[:, 5:].astype(np.float64) * h[:, None]
    return np.stack([xs, ys], axis=2)[:, ONET_TO_OURS]
