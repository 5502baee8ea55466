"""ml/render_pairs.py through its command line with the bpy module (real Cycles renders)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ml.data.pairs_layout import list_pairs, read_crop_rolls, read_pair
from rigs import load_spec

pytestmark = pytest.mark.blender
SCRIPT = Path(__file__).resolve().parents[1] / "ml" / "render_pairs.py"
ARGS = ["--count", "10", "--size", "96", "--shard-size", "4", "--seed", "5", "--samples", "4"]


def _run(out: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, str(SCRIPT), "--", *ARGS, "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "full"
    res = _run(out)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _contents(root: Path) -> dict[str, tuple]:
    out = {}
    for stem in list_pairs(root):
        p = read_pair(stem)
        out[str(stem.relative_to(root))] = (p.params, p.lm68, p.mask, p.image)
    return out


def test_pairs_agree_with_each_other(full_run):
    spec = load_spec()
    labels = list(spec.labels)
    stems = list_pairs(full_run)
    assert len(stems) == 10 and len({s.parent.name for s in stems}) == 3
    for stem in stems:
        p = read_pair(stem)
        assert p.image.shape == (96, 96, 3) and p.mask.shape == (96, 96)
        assert p.params.shape == (spec.size,) and p.lm68.shape == (68, 2)
        lab = lambda pt, m=p.mask: labels[m[int(round(pt[1])), int(round(pt[0]))]]  # noqa: E731

        def near(pt, want, mask=p.mask):  # the pixel or a neighbour (silhouettes at high yaw)
            x, y = int(round(pt[0])), int(round(pt[1]))
            return want in {labels[v] for v in mask[y - 1 : y + 2, x - 1 : x + 2].ravel()}

        assert near(p.lm5[2], "nose"), stem
        on_face = [lab(pt) != "background" for pt in p.lm68 if np.all((pt >= 0) & (pt < 95))]
        assert np.mean(on_face) > 0.85, stem
        for k, side in ((0, "R"), (1, "L")):  # open eyes: the eye centre is on the eye
            if p.params[spec.param(f"AU43_{side}").index] < 0.2:
                assert near(p.lm5[k], f"eye_{side.lower()}"), (stem, side)
        assert np.all(p.mask[p.image.sum(axis=2) == 0] >= 0)


def test_rerender_from_stored_params_matches(bpy_clean, full_run):
    sys.path.insert(0, str(SCRIPT.parent.parent))
    from ml.render_pairs import PairRenderer

    stem = list_pairs(full_run)[3]
    stored = read_pair(stem)
    renderer = PairRenderer(load_spec(), 96, 4)
    again = renderer.render(stored.params, 5, int(stem.name), randomize=False)
    assert np.mean(again.mask == stored.mask) > 0.995
    np.testing.assert_allclose(again.lm68, stored.lm68, atol=1e-3)
    assert np.abs(again.image.astype(float) - stored.image).mean() < 2.0
    # the rasterised mask agrees with a Cycles render of the label attribute
    assert np.mean(renderer.cycles_mask() == again.mask) > 0.97


def test_killed_run_resumes_to_the_same_set(full_run, tmp_path):
    out = tmp_path / "killed"
    proc = _run(out, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("shard_*/[0-9]*.npz"))) < 3:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert 0 < len(list_pairs(out)) < 10
    assert _run(out).returncode == 0
    a, b = _contents(full_run), _contents(out)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k][0], b[k][0])
        np.testing.assert_allclose(a[k][1], b[k][1], atol=1e-4)
    assert not list(out.rglob(".tmp_*"))


def test_shards_are_disjoint_and_complete(full_run, tmp_path):
    parts = []
    for k in range(2):
        out = tmp_path / f"part{k}"
        assert _run(out, "--shard", f"{k}/2").returncode == 0
        parts.append({str(s.relative_to(out)) for s in list_pairs(out)})
    assert not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(_contents(full_run))


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--shard", "2/2"], "need 0 <= K < N"),
        (["--size", "20"], "outside 64..512"),
        (["--shard-size", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_named(tmp_path, extra, message):
    res = _run(tmp_path / "x", *extra)
    assert res.returncode == 2 and message in res.stderr


def test_unwritable_and_mismatched_output_are_named(full_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = _run(blocker / "out")
    assert res.returncode == 2 and "not writable" in res.stderr
    res = _run(full_run, "--randomize")
    assert res.returncode == 2 and "dataset.json" in res.stderr and "randomize" in res.stderr


def test_dataset_reads_pairs_as_tensors(full_run):
    from ml.data.pairs_dataset import PairsDataset

    ds = PairsDataset(full_run)
    item = ds[0]
    assert len(ds) == 10 and item["image"].shape == (3, 96, 96)
    assert (
        item["mask"].dtype.is_floating_point is False
        and item["params"].shape[0] == load_spec().size
    )


def test_randomized_appearance_changes_background_and_light(full_run, tmp_path):
    out = tmp_path / "random"
    assert _run(out, "--randomize").returncode == 0
    plain, rand = _contents(full_run), _contents(out)
    assert plain.keys() == rand.keys()
    for k in plain:
        np.testing.assert_array_equal(plain[k][0], rand[k][0])  # same parameters
        assert np.mean(plain[k][2] == rand[k][2]) > 0.9  # same face; camera jitter aside
    bg = [
        rand[k][3][rand[k][2] == 0].std(axis=0).max()
        + abs(rand[k][3][rand[k][2] == 0].mean() - plain[k][3][plain[k][2] == 0].mean())
        for k in rand
    ]
    assert np.mean(np.array(bg) > 3.0) >= 0.8  # backgrounds are no longer the flat grey
    skin = [
        np.abs(rand[k][3][rand[k][2] == 1].mean(0) - plain[k][3][plain[k][2] == 1].mean(0)).max()
        for k in rand
    ]
    assert np.median(skin) > 5.0  # skin tone and light colour change the face


def test_sensitivity_set_shows_every_parameter(tmp_path):
    """Each AU, pose and gaze parameter visibly changes the aligned render on its own."""
    out = tmp_path / "sens.npz"
    cmd = [
        sys.executable,
        str(SCRIPT.parent / "blender" / "render_sensitivity.py"),
        "--",
        "--out",
        str(out),
        "--bases",
        "1",
        "--size",
        "128",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    z = np.load(out)
    spec = load_spec()
    assert list(z["names"]) == [p.name for p in spec.params if p.group in ("au", "pose", "gaze")]
    change = np.abs(z["images"][:, :, 1].astype(int) - z["images"][:, :, 0]).max(axis=-1)
    moved = (change > 12).sum(axis=(-1, -2))[0]  # pixels that changed visibly, per parameter
    quiet = [str(n) for n, m in zip(z["names"], moved, strict=True) if m < 6]
    assert not quiet, f"parameters that barely change a 128 px render: {quiet}"


def test_pairs_from_another_rig_spec_are_refused(full_run, tmp_path):
    import json
    import shutil

    from ml.data.pairs_dataset import PairsDataset
    from ml.data.pairs_layout import PairsError

    copy = tmp_path / "old"
    shutil.copytree(full_run, copy)
    meta = json.loads((copy / "dataset.json").read_text())
    meta["spec_hash"] = "0" * 64
    (copy / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(PairsError, match="render them again"):
        PairsDataset(copy)


def test_crop_roll_is_the_head_roll_of_a_rolled_frontal_face(bpy_clean):
    sys.path.insert(0, str(SCRIPT.parent.parent))
    from au_retarget_addon.core.align import crop_roll
    from ml.render_pairs import PairRenderer

    spec = load_spec()
    renderer = PairRenderer(spec, 96, 4)
    for roll in (-20.0, 0.0, 15.0):
        params = spec.defaults()
        params[spec.param("head_roll").index] = roll
        _, _, _, m = renderer.place(params, 5, 0, randomize=False)
        assert crop_roll(m) == pytest.approx(roll, abs=1.0)


def test_crop_rolls_follow_the_renders_and_refuse_changed_pairs(full_run, tmp_path):
    root = tmp_path / "pairs"
    shutil.copytree(full_run, root)
    script = SCRIPT.parent / "blender" / "crop_rolls.py"
    cmd = [sys.executable, str(script), "--", "--pairs", str(root)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    rolls = read_crop_rolls(root)
    assert rolls.shape == (10,) and np.isfinite(rolls).all()
    j = load_spec().param("head_roll").index
    head = np.array([read_pair(s).params[j] for s in list_pairs(root)])
    assert np.corrcoef(head, rolls)[0, 1] > 0.8  # yaw and pitch together add the rest

    stem = list_pairs(root)[4]  # a pair whose stored 5 points no longer fit its render
    with np.load(stem.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["lm5"] = arrays["lm5"] + 1.0
    np.savez(stem.with_suffix(".npz"), **arrays)
    (root / "crop_roll.npy").unlink()
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert (
        res.returncode == 2 and str(stem) in res.stderr and "Render the pairs again" in res.stderr
    )
    assert not (root / "crop_roll.npy").exists()  # nothing half-written


def test_a_flipped_render_is_the_render_of_the_mirrored_parameters(bpy_clean):
    # RigSpec.mirror is what the regressor's flip augmentation trains on: a flipped face
    # must look like the rig posed with the mirrored parameters. Label masks are compared,
    # left and right labels swapped (the key light is not symmetric, so not the pixels).
    # The crop itself is not exactly symmetric (the template's eye midpoint is 0.44 px right
    # of the 96 px crop's flip axis), so the bar is how well a flipped neutral face matches
    # itself.
    sys.path.insert(0, str(SCRIPT.parent.parent))
    from ml.data.augment import flip_map
    from ml.render_pairs import PairRenderer

    spec = load_spec()
    d = spec.defaults()
    renderer = PairRenderer(spec, 96, 1)
    swap = flip_map(spec.labels).numpy()

    def agreement(flip_of: np.ndarray, p: np.ndarray) -> float:
        flipped = swap[renderer.render(flip_of, 0, 0, randomize=False).mask[:, ::-1]]
        mask = renderer.render(p, 0, 0, randomize=False).mask
        face = (mask > 0) | (flipped > 0)
        return float(np.mean(mask[face] == flipped[face]))

    neutral = agreement(d, d)
    assert neutral > 0.9
    sideways = (("head_yaw", 18.0), ("head_roll", 9.0), ("gaze_yaw", 15.0), ("AD30", 0.8))
    one_sided = (("AU12_L", 1.0), ("AU43_R", 1.0), ("AU2_L", 1.0))
    for posed in (sideways, one_sided):
        params = d.copy()
        for name, value in posed:
            params[spec.param(name).index] = value
        mirrored = spec.mirrored(params)
        assert agreement(params, mirrored) > neutral - 0.01, posed
        # without mirroring the parameters it does not match
        assert agreement(params, params) < neutral - 0.05, posed
