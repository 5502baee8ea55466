"""Regressor R on the face parser: layout from the spec, ranges, gradients, ONNX bundle."""

from __future__ import annotations

import numpy as np
import torch

from ml.export.bundle import export_bundle
from ml.nets.parser.model import FaceParser
from ml.nets.regressor import SUBNETS, FaceToParams, Regressor, RegressorConfig
from rigs import load_spec

SMALL = RegressorConfig(image_size=64, conv_channels=32, hidden=64, se_reduction=4)


def test_every_parameter_comes_from_its_subnetwork():
    spec = load_spec()
    r = Regressor(spec, SMALL)
    assert sorted(i for v in r.index.values() for i in v) == list(range(spec.size))
    groups = {name: {spec.params[i].group for i in idx} for name, idx in r.index.items()}
    assert groups == {n: set(g) for n, (_, g) in SUBNETS.items()}


def test_outputs_stay_in_range_and_brow_style_is_an_index():
    spec = load_spec()
    parser, r = FaceParser(spec).eval(), Regressor(spec, SMALL).eval()
    with torch.no_grad():
        out = r(parser(torch.rand(3, 3, 64, 64)))
    p = out["params"].numpy()
    assert p.shape == (3, spec.size)
    assert (p >= spec.mins() - 1e-6).all() and (p <= spec.maxs() + 1e-6).all()
    style = p[:, spec.param("brow_style").index]
    assert np.array_equal(style, out["brow_logits"].argmax(1).numpy())


def test_gradients_reach_the_regressor_only_through_frozen_parser():
    spec = load_spec()
    parser = FaceParser(spec).eval().requires_grad_(False)
    r = Regressor(spec, SMALL).train()
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = r(parser(x))
    (out["params"].sum() + out["brow_logits"].sum()).backward()
    assert all(p.grad is not None for p in r.parameters())
    assert all(p.grad is None for p in parser.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_parser_plus_regressor_exports_to_a_bundle(tmp_path):
    import onnxruntime as ort

    spec = load_spec()
    torch.manual_seed(0)
    model = FaceToParams(FaceParser(spec), Regressor(spec, SMALL)).eval()
    out = export_bundle(model, spec, tmp_path / "r.aurt", 64, atol=1e-3)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(None, {"image": x.numpy()})[0]
    cont = [p.index for p in spec.params if not p.discrete]
    assert np.abs(got[:, cont] - ref[:, cont]).max() < 1e-3
    from au_retarget_addon.core.bundle import ModelBundle

    crops = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    assert ModelBundle(out, spec.hash(), device="cpu").run(crops).shape == (3, spec.size)


def test_a_regressor_with_its_own_backbone_parses_images_itself():
    import pytest

    spec = load_spec()
    torch.manual_seed(0)
    r = Regressor(spec, RegressorConfig(**{**SMALL.__dict__, "backbone": True})).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert r.backbone is not None
        assert torch.equal(r(x)["params"], r(r.backbone(x))["params"])
        model = FaceToParams(FaceParser(spec), r).eval()  # the backbone, not the given parser
        mean, std = r.backbone.mean, r.backbone.std
        assert torch.allclose(model((x - mean) / std), r(x)["params"], atol=1e-5)
    with pytest.raises(TypeError, match="no backbone"):
        Regressor(spec, SMALL)(x)
