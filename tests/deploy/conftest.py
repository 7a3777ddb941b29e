"""Rendering needs kubectl (preinstalled here); without it those tests skip and say why."""

from __future__ import annotations

import shutil

import pytest

from .manifests import overlay_names, rendered


@pytest.fixture(params=overlay_names())
def objects(request: pytest.FixtureRequest) -> tuple[dict, ...]:
    """The rendered objects of each overlay in turn."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: overlays cannot be rendered (deploy/kubernetes/check.py)")
    return rendered(request.param)
