"""A service image carries only part of gpuplane: its own package and gpuplane.shared.
Every gpuplane import in those files must be among them, or the container dies at start
with ImportError (the activator's image once lacked the list-and-watch module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gpuplane.toolchain.images import GPUPLANE_PACKAGE, SERVICE_IMAGES
from gpuplane.toolchain.python_image import package_sources


def imported_gpuplane_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gpuplane")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gpuplane":  # from gpuplane.shared import durations
                found |= {f"gpuplane.{alias.name}" for alias in node.names}
            elif node.module.startswith("gpuplane."):
                found.add(node.module)
    return found


def module_name(source: Path) -> str:
    relative = source.relative_to(GPUPLANE_PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


@pytest.mark.parametrize("kind", sorted(SERVICE_IMAGES))
def test_every_gpuplane_import_of_a_service_is_in_its_image(kind: str) -> None:
    service = SERVICE_IMAGES[kind]
    sources = package_sources(GPUPLANE_PACKAGE / service.package)
    carried = {module_name(source) for source in sources}
    wanted = set().union(*(imported_gpuplane_modules(source) for source in sources))
    assert wanted - carried == set(), f"{kind}: imports modules its image lacks"


def test_the_check_sees_a_missing_module(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from gpuplane import errors\nfrom gpuplane.kube.nodes import read_node\n")
    assert imported_gpuplane_modules(source) == {"gpuplane.errors", "gpuplane.kube.nodes"}
