"""A kubeconfig that is missing, empty (being written), half-written or broken reads as
an unreachable cluster (exit 3 at the CLI), never as a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuplane.kube import ClusterUnreachableError, connect, is_reachable


@pytest.mark.parametrize(
    "text",
    [
        "",
        "contexts: null\n",
        "apiVersion: v1\nkind: Config\nclusters: []\n",
        "{{{ not yaml",
        "- a list\n- not a mapping\n",
    ],
)
def test_unusable_kubeconfig_is_unreachable(tmp_path: Path, text: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    assert is_reachable(kubeconfig) is False
    with pytest.raises(ClusterUnreachableError, match=str(kubeconfig)):
        connect(kubeconfig)


def test_missing_kubeconfig_is_unreachable(tmp_path: Path) -> None:
    assert is_reachable(tmp_path / "absent") is False
