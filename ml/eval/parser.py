"""Evaluate a face parser: IoU per class and mIoU on held-out rendered pairs, and on
held-out pseudo-labelled real frames (`--real-labels`, from ml.data.pseudo_labels).

    python -m ml.eval.parser --checkpoint runs/parser/last.pt --pairs data/pairs \
        --real-labels data/real_labels.npz

Prints the table and writes `eval.json` and `eval.md` beside the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ml.data.pairs_dataset import PairsDataset
from ml.data.pseudo_labels import LabelledFaces
from ml.device import pick_device
from ml.errors import exit_on_error
from ml.train.checkpoint import load_checkpoint
from rigs.spec import load_spec


@torch.no_grad()
def confusion(
    model: torch.nn.Module,
    data: PairsDataset | LabelledFaces,
    n: int,
    device: torch.device,
    batch: int = 32,
) -> np.ndarray:
    """(n, n) pixel counts: rows are true labels, columns predicted; pixels labelled 255
    (unknown, in pseudo-labels) are left out."""
    conf = torch.zeros(n * n, dtype=torch.int64)
    for start in range(0, len(data), batch):
        items = [data[i] for i in range(start, min(start + batch, len(data)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        pred = model(images)["logits"].argmax(dim=1).cpu()
        true = torch.stack([it["mask"] for it in items])
        valid = true < n
        conf += torch.bincount((true[valid] * n + pred[valid]), minlength=n * n)
    return conf.view(n, n).numpy()


def iou_table(conf: np.ndarray, labels: list[str]) -> dict[str, float]:
    """IoU per label that occurs in the ground truth, plus their mean (mIoU)."""
    tp = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - tp
    out = {lab: float(tp[i] / union[i]) for i, lab in enumerate(labels) if conf[i].sum() > 0}
    out["mIoU"] = float(np.mean(list(out.values())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ml.eval.parser", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--holdout-every", type=int, default=20)
    ap.add_argument("--real-labels", type=Path, help="pseudo-labelled real frames (.npz)")
    args = ap.parse_args(argv)
    spec = load_spec()
    device = pick_device()
    model, ckpt = load_checkpoint(args.checkpoint, spec, device)
    model.to(device).eval()
    data = PairsDataset(args.pairs, "heldout", args.holdout_every)
    table = iou_table(confusion(model, data, len(spec.labels), device), list(spec.labels))
    result = {"step": ckpt["step"], "pairs": len(data), "iou_renders": table}
    real: dict[str, float] = {}
    if args.real_labels is not None:
        held = LabelledFaces(args.real_labels, "heldout")
        real = iou_table(confusion(model, held, len(spec.labels), device), list(spec.labels))
        result.update({"real_frames": len(held), "iou_real": real})
    rows = [f"| {k} | {v:.3f} | {real.get(k, float('nan')):.3f} |\n" for k, v in table.items()]
    md = "| class | IoU (held-out renders) | IoU (held-out real frames) |\n| --- | --- | --- |\n"
    md += "".join(rows)
    print(md)
    out = args.checkpoint.parent
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    (out / "eval.md").write_text(
        f"Parser at step {ckpt['step']}, {len(data)} held-out renders\n\n" + md
    )
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_error("python -m ml.eval.parser", main))
