"""Fixtures of the chart tests: the real helm (fetched once), and rendering the chart."""

from __future__ import annotations

import pytest

from tests.integration.helm.chart import Helm
from tests.integration.helm.helmbin import HelmUnavailable, helm_binary


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm with its own config, cache and data directories; skipped when it cannot be fetched."""
    try:
        binary = helm_binary()
    except HelmUnavailable as e:
        pytest.skip(f"helm is unavailable: {e}")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))
