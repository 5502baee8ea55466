"""The default model committed inside the add-on (issue 10), checked against this rig."""

from __future__ import annotations

import pytest

from au_retarget_addon.core.bundle import ModelBundle
from au_retarget_addon.resources import DEFAULT_BUNDLE
from rigs import load_spec


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    # Raises BundleError when the rig's parameters or gains changed after the model was
    # trained: a rig change has to ship with a retrained default model.
    return ModelBundle(DEFAULT_BUNDLE, load_spec().hash(), device="cpu")


def test_default_model_fits_the_size_budget(bundle: ModelBundle) -> None:
    total = sum(f.stat().st_size for f in DEFAULT_BUNDLE.iterdir() if f.is_file())
    assert total <= 30 * 2**20, total
