"""Generator training with tiny configs: loss falls, resume is exact, DDP ranks agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml.train.checkpoint import CheckpointError, load_checkpoint
from rigs import load_spec

TINY = [
    "model.image_size=32",
    "model.max_channels=32",
    "optim.batch_size=4",
    "data.workers=0",
    "optim.lr=0.002",
    "run.sample_every=1000",
    "run.log_every=1",
]


def _train(
    pairs: Path,
    run: Path,
    steps: int,
    *extra: str,
    wait: bool = True,
    launcher: list[str] | None = None,
):
    sets = [*TINY, f"data.pairs={pairs}", f"run.dir={run}", f"optim.steps={steps}", *extra]
    cmd = [*(launcher or [sys.executable, "-m"]), "ml.train.generator"]
    for s in sets:
        cmd += ["--set", s]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((run / "summary.json").read_text())


def test_tiny_training_run_lowers_the_loss(tiny_pairs, tmp_path):
    summary = _train(tiny_pairs, tmp_path / "run", 25)
    assert summary["step"] == 25
    assert summary["last_loss_mean"] < 0.8 * summary["first_loss_mean"]
    assert (tmp_path / "run" / "config.toml").exists()
    assert list((tmp_path / "run" / "samples").glob("step_*.png"))
    model, ckpt = load_checkpoint(tmp_path / "run" / "last.pt", load_spec())
    assert ckpt["step"] == 25 and ckpt["model_config"]["image_size"] == 32


def test_killed_run_resumes_to_the_same_weights(tiny_pairs, tmp_path):
    straight = _train(tiny_pairs, tmp_path / "straight", 12, "run.ckpt_every=1")
    run = tmp_path / "killed"
    proc = _train(tiny_pairs, run, 12, "run.ckpt_every=1", wait=False)
    deadline = time.time() + 120
    while time.time() < deadline:
        log = run / "log.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert not (run / "summary.json").exists(), "the run finished before it was killed"
    resumed = _train(tiny_pairs, run, 12, "run.ckpt_every=1")
    assert resumed["step"] == 12
    assert resumed["rank_checksums"] == straight["rank_checksums"]


def test_longer_run_continues_from_checkpoint(tiny_pairs, tmp_path):
    straight = _train(tiny_pairs, tmp_path / "a", 8)
    _train(tiny_pairs, tmp_path / "b", 4)
    # as a run killed after step 4's checkpoint leaves it: log rows up to step 8 and a
    # torn last line; the resumed run writes steps 5 to 8 once
    log_a = (tmp_path / "a" / "log.jsonl").read_text()
    (tmp_path / "b" / "log.jsonl").write_text(log_a + '{"step": 9, "lo')
    extended = _train(tiny_pairs, tmp_path / "b", 8)
    assert extended["rank_checksums"] == straight["rank_checksums"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").open()]
    assert steps == [json.loads(line)["step"] for line in log_a.splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 8


def test_changed_model_config_refuses_to_resume(tiny_pairs, tmp_path):
    _train(tiny_pairs, tmp_path / "run", 2)
    cmd = [
        sys.executable,
        "-m",
        "ml.train.generator",
        "--set",
        f"data.pairs={tiny_pairs}",
        "--set",
        f"run.dir={tmp_path / 'run'}",
        "--set",
        "model.image_size=64",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode != 0 and "use a new run.dir" in res.stderr


def test_checkpoint_for_another_rig_is_refused(tiny_pairs, tmp_path):
    import torch

    _train(tiny_pairs, tmp_path / "run", 1)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    ckpt["spec_hash"] = "0" * 64
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="rig spec"):
        load_checkpoint(tmp_path / "other.pt", load_spec())


def test_two_gloo_processes_keep_identical_weights(tiny_pairs, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun is installed with torch"
    launcher = [torchrun, "--standalone", "--nproc_per_node", "2", "-m"]
    summary = _train(tiny_pairs, tmp_path / "ddp", 4, launcher=launcher)
    sums = summary["rank_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
