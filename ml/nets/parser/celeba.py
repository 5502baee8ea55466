"""Loading face-parsing.PyTorch checkpoints (BiSeNet on CelebAMask-HQ, 19 classes).

The usual file is `79999_iter.pth`: a plain state dict (sometimes with a `module.` prefix
from DataParallel) of the BiSeNet in `ml.nets.parser.bisenet`. Its 19 classes map onto the
rig's labels as below; logits of classes that share one of our labels combine by
logsumexp, which is exact for the summed probabilities.

Left/right: face-parsing.PyTorch's `l_`/`r_` classes are taken to be the person's left and
right, like our `_l`/`_r` labels. If a checkpoint turns out to use image sides, swap with
`swap_sides=True`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ml.errors import MLError
from ml.nets.parser.bisenet import ParserConfig
from ml.nets.parser.model import FaceParser
from rigs.spec import RigSpec

# Class order of face-parsing.PyTorch (not the CelebAMask-HQ README's order).
CELEBA_CLASSES = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)

# Our label -> CelebAMask-HQ classes (glasses and ears count as skin; hats as hair).
TO_OURS: dict[str, tuple[str, ...]] = {
    "background": ("background", "cloth"),
    "skin": ("skin", "eye_g", "l_ear", "r_ear", "ear_r"),
    "brow_l": ("l_brow",),
    "brow_r": ("r_brow",),
    "eye_l": ("l_eye",),
    "eye_r": ("r_eye",),
    "nose": ("nose",),
    "upper_lip": ("u_lip",),
    "lower_lip": ("l_lip",),
    "inner_mouth": ("mouth",),
    "hair": ("hair", "hat"),
    "neck": ("neck", "neck_l"),
}


class ParserCheckpointError(MLError, RuntimeError):
    """A parser checkpoint cannot be used; the message names the file."""


def class_groups(spec: RigSpec, swap_sides: bool = False) -> list[list[int]]:
    groups = []
    for label in spec.labels:
        if label not in TO_OURS:
            raise ParserCheckpointError(f"no CelebAMask-HQ classes for rig label {label!r}")
        names = TO_OURS[label]
        if swap_sides:
            names = tuple(
                n.replace("l_", "x_").replace("r_", "l_").replace("x_", "r_")
                if n[:2] in ("l_", "r_")
                else n
                for n in names
            )
        groups.append([CELEBA_CLASSES.index(n) for n in names])
    return groups


def load_face_parsing_checkpoint(
    path: str | Path, spec: RigSpec, swap_sides: bool = False
) -> FaceParser:
    """FaceParser with the checkpoint's 19-class BiSeNet, reporting our labels."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many types
        raise ParserCheckpointError(f"parser checkpoint {path} cannot be read: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = FaceParser(
        spec, ParserConfig(num_classes=len(CELEBA_CLASSES)), class_groups(spec, swap_sides)
    )
    missing, unexpected = model.net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ParserCheckpointError(
            f"{path} is not a face-parsing.PyTorch BiSeNet: missing "
            f"{missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval()
