"""Model bundles: an ONNX regressor plus its model card, run with onnxruntime.

A bundle is a folder holding `model.onnx` and `model_card.json`. The card names the
output parameters in order, the rig spec hash they belong to, and the input crop
(size and normalisation); the runtime trusts nothing else about the network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .providers import ProviderError, execution_providers

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CARD_FILE = "model_card.json"


class BundleError(RuntimeError):
    """A model bundle is missing, corrupt or made for another rig (names the file)."""


@dataclass(frozen=True)
class InputSpec:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def read_card(path: Path) -> dict[str, Any]:
    """The model card of the bundle folder `path`, checked for the keys tracking needs."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"model bundle {path} has no {CARD_FILE}")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{card_path} is not valid JSON: {exc}") from exc
    check_card(card, card_path)
    return dict(card)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def check_card(card: Any, card_path: Path) -> None:
    """The card's schema, as far as tracking reads it; a BundleError names the file and
    the field that is wrong."""

    def bad(field: str, want: str) -> BundleError:
        return BundleError(f"{card_path}: {field} must be {want}")

    if not isinstance(card, dict):
        raise BundleError(f"{card_path} is not a model card (a JSON object)")
    for key in ("spec_hash", "outputs", "input"):
        if key not in card:
            raise BundleError(f"{card_path} lacks the key {key!r}")
    if not isinstance(card["spec_hash"], str) or not card["spec_hash"]:
        raise bad("spec_hash", "a string")
    outputs = card["outputs"]
    if not (isinstance(outputs, list) and outputs and all(isinstance(n, str) for n in outputs)):
        raise bad("outputs", "a non-empty list of parameter names")
    if len(set(outputs)) != len(outputs):
        raise bad("outputs", "a list of distinct names")
    inp = card["input"]
    if not isinstance(inp, dict):
        raise bad("input", "an object with size, mean and std")
    size = inp.get("size")
    if not (isinstance(size, int) and not isinstance(size, bool) and 16 <= size <= 4096):
        raise bad("input.size", "a whole number of pixels (16 to 4096)")
    for key in ("mean", "std"):
        v = inp.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(_number(x) for x in v)):
            raise bad(f"input.{key}", "a list of 3 numbers (R, G, B)")
    if any(x <= 0 for x in inp["std"]):
        raise bad("input.std", "positive")
    ranges = card.get("ranges", {})
    if not isinstance(ranges, dict):
        raise bad("ranges", "an object of parameter: [min, max]")
    for name, r in ranges.items():
        if not (isinstance(r, list) and len(r) == 2 and all(_number(x) for x in r)):
            raise bad(f"ranges.{name}", "[min, max] numbers")
        if r[0] > r[1]:
            raise bad(f"ranges.{name}", "[min, max] with min <= max")
    groups = card.get("groups", {})
    if not (isinstance(groups, dict) and all(isinstance(g, list) for g in groups.values())):
        raise bad("groups", "an object of group: [parameter names]")
    roll = card.get("roll_in_crop", False)
    if not isinstance(roll, bool):
        raise bad("roll_in_crop", "true or false")
    if roll and not ("head_roll" in outputs and "head_roll" in ranges):
        raise bad("roll_in_crop", "false for a card without head_roll in outputs and ranges")


class Reading(NamedTuple):
    """What a bundle reads from crops: parameters (N, P), and where the graph outputs them,
    F's face presence (N,) and F's landmarks (N, L, 3) in the crop's pixels (x, y, depth)."""

    values: np.ndarray
    presence: np.ndarray | None
    landmarks: np.ndarray | None


class ModelBundle:
    """An ONNX parameter regressor: aligned RGB crops (N, S, S, 3) uint8 -> (N, P) values."""

    def __init__(
        self, path: str | Path, spec_hash: str | None = None, device: str = "auto", threads: int = 0
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if self.path.is_file():
            raise BundleError(
                f"model bundle {self.path} is a file: give the folder holding "
                f"{MODEL_FILE} and {CARD_FILE}"
            )
        if not self.path.is_dir():
            raise BundleError(f"model bundle {self.path} does not exist")
        self.card = read_card(self.path)
        if spec_hash is not None and self.card["spec_hash"] != spec_hash:
            raise BundleError(
                f"model bundle {self.path} was trained for rig spec "
                f"{self.card['spec_hash'][:12]}, this rig is {spec_hash[:12]}"
            )
        inp = self.card["input"]
        self.input = InputSpec(int(inp["size"]), tuple(inp["mean"]), tuple(inp["std"]))
        self.names: list[str] = list(self.card["outputs"])
        # the graph reads head_roll relative to the aligned crop; run() adds the crop's angle
        self.roll_in_crop = bool(self.card.get("roll_in_crop", False))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        model = self.path / MODEL_FILE
        if not model.is_file():
            raise BundleError(f"model bundle {self.path} has no {MODEL_FILE}")
        try:
            chosen = execution_providers(device)
        except ProviderError as exc:
            raise BundleError(f"model bundle {self.path}: {exc}") from exc
        try:
            self.session = ort.InferenceSession(str(model), opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own types for corrupt models
            raise BundleError(f"{model} cannot be loaded by onnxruntime: {exc}") from exc
        outputs = [o.name for o in self.session.get_outputs()]
        # "presence": F's face-presence probability per crop (landmark-F bundles)
        self.presence_output = outputs.index("presence") if "presence" in outputs else None
        # "landmarks": F's landmarks per crop, (N, L, 3) in crop pixels (landmark-F bundles)
        self.landmarks_output = outputs.index("landmarks") if "landmarks" in outputs else None
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int):  # symbolic widths are checked on the first run
            self._check_width(width)

    def _check_width(self, width: int) -> None:
        if width != len(self.names):
            model = self.path / MODEL_FILE
            raise BundleError(
                f"{model} outputs {width} values, {CARD_FILE} names {len(self.names)}"
            )

    def normalise(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, S, S, 3) uint8 RGB -> the graph's input (N, 3, S, S) float32."""
        mean = np.array(self.input.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.array(self.input.std, np.float32).reshape(1, 3, 1, 1)
        x = crops.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return (x - mean) / std

    @property
    def has_landmarks(self) -> bool:
        """Whether the graph outputs F's landmarks and presence (what steers a crop)."""
        return self.landmarks_output is not None and self.presence_output is not None

    def _infer(self, crops: np.ndarray, batch: int) -> Reading:
        name = self.session.get_inputs()[0].name
        outs, presence, marks = [], [], []
        for s in range(0, len(crops), batch):
            got = self.session.run(None, {name: self.normalise(crops[s : s + batch])})
            outs.append(got[0])
            if self.presence_output is not None:
                presence.append(got[self.presence_output].reshape(-1))
            if self.landmarks_output is not None:
                marks.append(got[self.landmarks_output])
        if not outs:
            empty = np.zeros((0,), np.float32) if self.presence_output is not None else None
            none = np.zeros((0, 0, 3), np.float32) if self.landmarks_output is not None else None
            return Reading(np.zeros((0, len(self.names)), np.float32), empty, none)
        pres = np.concatenate(presence).astype(np.float32) if presence else None
        lms = np.concatenate(marks).astype(np.float32) if marks else None
        return Reading(np.concatenate(outs).astype(np.float32), pres, lms)

    def run(
        self, crops: np.ndarray, batch: int = 32, *, crop_rolls: np.ndarray | None = None
    ) -> np.ndarray:
        """Parameters for each crop, in the card's order (float32); see `read`."""
        return self.read(crops, batch, crop_rolls=crop_rolls)[0]

    def read(
        self, crops: np.ndarray, batch: int = 32, *, crop_rolls: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Parameters for each crop, in the card's order (float32), and F's probability
        that a face fills each crop where the graph outputs one (`presence`; else None);
        `read_all` adds F's landmarks.

        `crop_rolls` (N,): the degrees of roll each crop's alignment took out
        (`align.crop_roll` of its matrix). A bundle whose card says roll_in_crop needs them:
        its head_roll output is the graph's plus the crop's, kept in the rig's range."""
        values, presence, _ = self.read_all(crops, batch, crop_rolls=crop_rolls)
        return values, presence

    def read_all(
        self, crops: np.ndarray, batch: int = 32, *, crop_rolls: np.ndarray | None = None
    ) -> Reading:
        """`read`, plus F's landmarks in each crop's pixels where the graph outputs them."""
        if crops.ndim != 4 or crops.shape[1:] != (self.input.size, self.input.size, 3):
            raise BundleError(
                f"crops must be (N, {self.input.size}, {self.input.size}, 3), got {crops.shape}"
            )
        got = None if crop_rolls is None else np.shape(crop_rolls)
        if self.roll_in_crop and got != (len(crops),):
            raise BundleError(
                f"model bundle {self.path} reads head roll relative to the aligned crop: "
                f"give one crop roll per crop ({len(crops)}), not {got}"
            )
        result, presence, landmarks = self._infer(crops, batch)
        self._check_width(result.shape[1])
        if self.roll_in_crop:
            j = self.names.index("head_roll")
            lo, hi = self.card["ranges"]["head_roll"]
            result[:, j] = np.clip(result[:, j] + np.asarray(crop_rolls, np.float32), lo, hi)
        return Reading(result, presence, landmarks)
