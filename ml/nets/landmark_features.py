"""F on MediaPipe's face landmark network (paper section 2.3 with a network trained on
real faces): from an aligned crop, the network's own landmarks, a global feature, and per
facial component (eyes, brows, nose, mouth, face) its feature maps pooled under part masks
made from its own landmarks (the paper's equation 5). Frozen; differentiable in the image.

Outputs, for (N, 3, S, S) RGB crops in [0, 1] (any S: resized to the network's input):
- `landmarks` (N, P, 3): x, y, depth in crop units, centred ((px - S/2) / S);
- `parts` (N, K, C): each component's mask-weighted mean of the 1/8 and 1/16 resolution
  feature maps, K = len(PARTS), C = their channels together;
- `global` (N, G): the feature map the landmark head reads, flattened;
- `aligned` (N, P * 3 + 2): the landmarks in the eyes' frame (origin between the eye
  centres, x along the eye line, inter-ocular distance 1) flattened, then the eye line's
  angle in the crop as sin and cos: the face's shape, free of where and how large the
  detector put it;
- `presence` (N,): the network's face-presence probability;
- `vector` (N, D): the outputs named by `inputs` (default: landmarks, parts, global)
  flattened and joined, for a regressor.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ml.nets.face_landmark_net import FaceLandmarkNet, LandmarkNetError, load

# component -> MediaPipe face-mesh connection sets (mediapipe's own, training extra); the
# subject's left and right are MediaPipe's LEFT and RIGHT
PARTS = {
    "eye_left": ("FACEMESH_LEFT_EYE",),
    "eye_right": ("FACEMESH_RIGHT_EYE",),
    "brow_left": ("FACEMESH_LEFT_EYEBROW",),
    "brow_right": ("FACEMESH_RIGHT_EYEBROW",),
    "nose": ("FACEMESH_NOSE",),
    "mouth": ("FACEMESH_LIPS",),
    "face": ("FACEMESH_FACE_OVAL",),
}
MASK_SIGMA = 1.0  # the part masks' Gaussian width, in cells of the map they pool
INPUTS = ("landmarks", "aligned", "parts", "global")  # what a regressor may read
DEFAULT_INPUTS = ("landmarks", "parts", "global")


@lru_cache(maxsize=1)
def part_indices() -> dict[str, list[int]]:
    """Landmark indices of each component, from mediapipe's face-mesh connections."""
    try:
        from mediapipe.python.solutions import face_mesh_connections as fmc
    except ImportError as exc:
        raise LandmarkNetError(
            "mediapipe is not installed (training extra): it defines the face-mesh parts"
        ) from exc
    return {
        part: sorted(set(itertools.chain.from_iterable(
            itertools.chain.from_iterable(getattr(fmc, n) for n in names)
        )))
        for part, names in PARTS.items()
    }  # fmt: skip


def _taps(net: FaceLandmarkNet) -> tuple[int, int, int]:
    """Steps whose outputs F reads: the last at 1/8 and at 1/16 of the input, and the
    one feeding the landmark head."""
    shapes: dict[int, tuple[int, ...]] = {}
    with torch.no_grad():
        out = net(torch.zeros(1, 3, net.size, net.size), taps=tuple(range(len(net.steps))))
    for k in range(len(net.steps)):
        shapes[k] = tuple(out[f"step{k}"].shape)
    eighth = max(k for k, s in shapes.items() if len(s) == 4 and s[2] == net.size // 8)
    sixteenth = max(k for k, s in shapes.items() if len(s) == 4 and s[2] == net.size // 16)
    head = next(k for k, st in enumerate(net.steps) if st[2] == net.output_ids[0])
    feeds = net.steps[head][1][0]
    source = next(k for k, st in enumerate(net.steps) if st[2] == feeds)
    return eighth, sixteenth, source


class LandmarkF(nn.Module):
    """The frozen landmark network and the features read off it (module docstring)."""

    def __init__(
        self, net: FaceLandmarkNet | None = None, inputs: tuple[str, ...] = DEFAULT_INPUTS
    ) -> None:
        super().__init__()
        unknown = [i for i in inputs if i not in INPUTS]
        if unknown or not inputs:
            raise LandmarkNetError(f"F's inputs {list(inputs)}: each one of {list(INPUTS)}")
        self.inputs = tuple(inputs)
        self.net = net or load("468")
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.taps = _taps(self.net)
        idx = part_indices()
        self.part_names = list(PARTS)
        members = torch.zeros(len(PARTS), self.net.points)
        for i, part in enumerate(self.part_names):
            members[i, [j for j in idx[part] if j < self.net.points]] = 1.0
        self.register_buffer("members", members)  # (K, P)
        eyes = torch.zeros(2, self.net.points)
        for i, part in enumerate(("eye_left", "eye_right")):
            eyes[i, idx[part]] = 1.0 / len(idx[part])
        self.register_buffer("eyes", eyes)  # (2, P): each eye's centre as a landmark mean

    def train(self, mode: bool = True) -> LandmarkF:
        super().train(mode)
        self.net.eval()  # frozen: never in training mode
        return self

    def _masks(self, xy: torch.Tensor, h: int) -> torch.Tensor:
        """(N, K, h, h) part masks summing to 1: Gaussians at each part's landmarks."""
        grid = (torch.arange(h, device=xy.device, dtype=xy.dtype) + 0.5) / h  # cell centres
        d2x = (xy[..., 0:1] - grid) ** 2  # (N, P, h)
        d2y = (xy[..., 1:2] - grid) ** 2
        s2 = 2 * (MASK_SIGMA / h) ** 2
        g = torch.exp(-d2y[..., :, None] / s2) * torch.exp(-d2x[..., None, :] / s2)  # N,P,h,h
        m = torch.einsum("kp,nphw->nkhw", self.members, g)
        return m / m.sum((2, 3), keepdim=True).clamp_min(1e-8)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = self.net.size
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out = self.net(x, taps=self.taps)
        lm = out["landmarks"] / size  # x, y in [0, 1] of the crop; depth in the same unit
        pooled = []
        for k in self.taps[:2]:
            fmap = out[f"step{k}"]
            masks = self._masks(lm[..., :2], fmap.shape[-1])
            pooled.append(torch.einsum("nkhw,nchw->nkc", masks, fmap))
        parts = torch.cat(pooled, dim=2)
        glob = out[f"step{self.taps[2]}"].flatten(1)
        centred = lm - torch.tensor([0.5, 0.5, 0.0], device=lm.device, dtype=lm.dtype)
        feats = {
            "landmarks": centred, "aligned": self.align(centred), "parts": parts,
            "global": glob, "presence": out["presence"],
        }  # fmt: skip
        feats["vector"] = self.join(feats)
        return feats

    def align(self, lm: torch.Tensor) -> torch.Tensor:
        """(N, P, 3) landmarks -> (N, P * 3 + 2): in the eyes' frame, inter-ocular units,
        then sin and cos of the eye line's angle (the subject's left eye is on the image's
        right, so a level face has angle 0)."""
        centres = torch.einsum("ep,npc->nec", self.eyes, lm)  # (N, 2, 3)
        d = centres[:, 0, :2] - centres[:, 1, :2]  # right eye (image left) -> left eye
        iod = d.norm(dim=1, keepdim=True).clamp_min(1e-6)
        c, s = d[:, 0:1] / iod, d[:, 1:2] / iod
        rel = lm - centres.mean(1, keepdim=True)
        x = (c * rel[..., 0] + s * rel[..., 1]) / iod
        y = (-s * rel[..., 0] + c * rel[..., 1]) / iod
        z = rel[..., 2] / iod
        return torch.cat([torch.stack([x, y, z], dim=2).flatten(1), s, c], dim=1)

    def join(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """The regressor's input: the outputs named in `inputs`, flattened and joined."""
        return torch.cat([feats[k].flatten(1) for k in self.inputs], dim=1)

    @property
    def dim(self) -> int:
        with torch.no_grad():
            return int(self(torch.zeros(1, 3, self.net.size, self.net.size))["vector"].shape[1])
