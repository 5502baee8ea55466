"""Generator evaluation: image metrics and the sensitivity correlation on real data."""

from __future__ import annotations

import numpy as np
import torch

from ml.eval.generator import psnr, sensitivity, ssim


def test_metrics_on_identical_and_different_images():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert (psnr(x, x) > 90).all()
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(x, noisy) < 0.95).all() and (psnr(x, noisy) < 25).all()


class _Lookup(torch.nn.Module):
    """A 'generator' that returns the stored render for each parameter vector."""

    def __init__(self, params: torch.Tensor, images: torch.Tensor) -> None:
        super().__init__()
        self.params, self.images = params, images

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(p, self.params)
        return self.images[d.argmin(dim=1)]


def test_sensitivity_is_one_for_the_renderer_itself(tmp_path):
    rng = np.random.default_rng(0)
    b, p, s, dim = 2, 3, 16, 5
    images = rng.integers(0, 255, (b, p, 2, s, s, 3), dtype=np.uint8)
    params = rng.normal(size=(b, p, 2, dim)).astype(np.float32)
    path = tmp_path / "sens.npz"
    np.savez(path, images=images, params=params, names=np.array(["a", "b", "c"]))
    flat_p = torch.from_numpy(params.reshape(-1, dim))
    flat_i = torch.from_numpy(images.reshape(-1, s, s, 3)).permute(0, 3, 1, 2).float() / 255
    r = sensitivity(_Lookup(flat_p, flat_i), path, s, torch.device("cpu"))
    assert r.keys() == {"a", "b", "c"} and all(v > 0.999 for v in r.values())
    shuffled = _Lookup(flat_p, flat_i.roll(1, dims=0))  # every image moved: no match
    r2 = sensitivity(shuffled, path, s, torch.device("cpu"))
    assert all(abs(v) < 0.5 for v in r2.values())


def test_eval_command_writes_table_beside_checkpoint(tiny_pairs, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ml.train.generator"]
    for s in (
        f"data.pairs={tiny_pairs}",
        f"run.dir={run}",
        "optim.steps=2",
        "model.image_size=32",
        "model.max_channels=32",
        "optim.batch_size=4",
        "data.workers=0",
        "loss.perceptual=0",
    ):
        cmd += ["--set", s]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml.eval.generator",
            "--checkpoint",
            str(run / "last.pt"),
            "--pairs",
            str(tiny_pairs),
            "--holdout-every",
            "4",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "PSNR" in res.stdout and (run / "eval.md").exists() and (run / "eval.json").exists()
