"""The regressor's five losses: zero where they should be, gradients where they should go."""

from __future__ import annotations

import pytest
import torch

from ml.losses.adversarial import MouthDiscriminator, adversarial_loss, discriminator_loss
from ml.losses.content import content_loss
from ml.losses.identity import identity_loss
from ml.losses.loopback import loopback_distance, loopback_loss, with_base
from ml.losses.parameter import ParameterLoss
from rigs import load_spec


def test_content_loss_is_zero_only_for_equal_representations():
    t = {k: torch.rand(2, 8, 4, 4) for k in ("eyes", "brows", "nose", "mouth", "face")}
    assert content_loss(t, t).item() == 0.0
    u = {**t, "mouth": t["mouth"] + 0.5}
    assert abs(content_loss(u, t).item() - 0.5) < 1e-6


def test_identity_loss_is_one_minus_cosine():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    assert abs(identity_loss(a, b).item() - 0.5) < 1e-6  # cos 1 and cos 0


def test_parameter_loss_is_zero_at_the_reference_face_and_weighted():
    spec = load_spec()
    ref = torch.tensor(spec.defaults())[None]
    loss = ParameterLoss(spec, alpha=0.1, beta=0.01)
    assert loss(ref).item() == 0.0
    au, ident = ref.clone(), ref.clone()
    au[0, spec.layout()["au"]] += 0.5
    ident[0, spec.layout()["identity"]] += 0.5
    assert loss(ident).item() > loss(au).item() > 0  # alpha > beta


def test_loopback_resets_groups_and_recovers_exact_parameters():
    spec = load_spec()
    p = torch.tensor(spec.defaults())[None].repeat(2, 1)
    p[:, spec.layout()["au"]] = 0.7
    base_au = with_base(p, spec, "au")
    assert (base_au[:, spec.layout()["au"]] == 0).all() and (p[:, spec.layout()["au"]] == 0.7).all()
    style = spec.param("brow_style").index
    logits = torch.full((2, len(spec.brow_styles)), -20.0)
    logits[:, 0] = 20.0  # confident in style 0, the target
    assert loopback_distance(base_au, logits, base_au, spec).item() < 1e-6
    off = base_au.clone()
    off[:, 0] += 9.0  # yaw off by 9 of its 90 degree range
    expected = 0.1 / (spec.size - 1)  # one of the continuous parameters is off by 0.1
    assert abs(loopback_distance(off, logits, base_au, spec).item() - expected) < 1e-5
    total = loopback_loss((off, logits), base_au, (base_au, logits), base_au, spec, 1.0)
    assert total.item() > 0 and p[0, style] == 0


def test_adversarial_players_get_their_own_gradients():
    torch.manual_seed(0)
    d = MouthDiscriminator(channels=8, width=16)
    base = torch.rand(4, 8, 4, 4)
    emo = torch.rand(4, 8, 4, 4, requires_grad=True)
    discriminator_loss(d, base, emo).backward()
    assert emo.grad is None  # the discriminator's step never reaches the regressor
    assert all(p.grad is not None for p in d.parameters())
    d.zero_grad()
    adversarial_loss(d, emo).backward()
    assert emo.grad is not None and emo.grad.abs().sum() > 0


def test_supervised_loss_keeps_a_gradient_where_the_sigmoid_saturates():
    from ml.losses.supervised import supervised_loss
    from ml.nets.regressor import Regressor, RegressorConfig

    spec = load_spec()
    reg = Regressor(spec, RegressorConfig(image_size=64, conv_channels=8, hidden=16))
    j = spec.names.index("AU12_L")
    logits = torch.zeros(2, spec.size)
    logits[:, j] = -20.0  # an AU pushed far towards 0
    logits.requires_grad_(True)
    params_out = reg.lo + reg.span * torch.sigmoid(logits)
    out = {"logits": logits, "params": params_out, "brow_logits": torch.zeros(2, 5)}
    target = torch.tensor(spec.defaults()).repeat(2, 1)
    target[:, j] = 0.6
    loss, mae = supervised_loss(out, target, reg)
    loss.backward()
    n = 2 * (spec.size - 1)  # continuous entries averaged by the BCE
    assert logits.grad[0, j].item() == pytest.approx(-0.6 / n, rel=1e-3)
    z = torch.tensor(-20.0, requires_grad=True)
    (torch.sigmoid(z) - 0.6).abs().backward()
    assert abs(z.grad.item()) < 1e-8  # L1 through the sigmoid: no way back from 0
    assert mae > 0


def test_supervised_loss_weighs_groups_by_their_means():
    from ml.config import ConfigError
    from ml.losses.supervised import supervised_loss
    from ml.nets.regressor import Regressor, RegressorConfig

    spec = load_spec()
    reg = Regressor(spec, RegressorConfig(image_size=64, conv_channels=8, hidden=16))
    au, pose, ident = (reg.group_index[g] for g in ("au", "pose", "identity"))
    logits = torch.zeros(2, spec.size, requires_grad=True)
    out = {"logits": logits, "params": reg.lo + reg.span * torch.sigmoid(logits)}
    out["brow_logits"] = torch.zeros(2, 5)
    target = torch.tensor(spec.maxs()).repeat(2, 1)  # every target at the top of its range
    target[:, reg.index["brow"]] = 0
    loss, _ = supervised_loss(out, target, reg, {"au": 3.0, "pose": 1.0})
    loss.backward()
    g = logits.grad
    # d/dz of a group mean of BCE at z=0, t=1 is -0.5 / (entries); groups mix 3:1 of 4
    assert g[0, au[0]].item() == pytest.approx(-0.5 / (2 * len(au)) * 3 / 4, rel=1e-4)
    assert g[0, pose[0]].item() == pytest.approx(-0.5 / (2 * len(pose)) * 1 / 4, rel=1e-4)
    assert g[:, ident].abs().max().item() == 0  # a group without a weight weighs 0
    with pytest.raises(ConfigError, match="unknown group 'aus'"):
        supervised_loss(out, target, reg, {"aus": 1.0})
    with pytest.raises(ConfigError, match="at least one group"):
        supervised_loss(out, target, reg, {"au": 0.0})
