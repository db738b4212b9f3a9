"""An image's Python sources carry bytecode compiled when the image is built, valid although
every file in the layer has the same fixed mtime (so a wake never compiles its imports)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gpuplane.toolchain.bytecode import bytecode_entries
from gpuplane.toolchain.oci_layout import EPOCH, Entry


def materialise(entries: list[Entry], root: Path) -> None:
    """The files as the layer holds them: the sources' bytes, the layer's one mtime."""
    for entry in entries:
        assert entry.source is not None
        target = root / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(entry.source.read_bytes())
        os.utime(target, (EPOCH, EPOCH))


def test_a_module_in_the_image_is_loaded_from_its_bytecode_not_compiled(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "greeting.py").write_text("WORDS = 'hello'\n")
    (host / "broken.py").write_text("def (:\n")
    sources = [
        Entry("opt/site/greeting.py", source=host / "greeting.py"),
        Entry("opt/site/broken.py", source=host / "broken.py"),
    ]
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    compiled = bytecode_entries(Path(sys.executable), sources, scratch)

    tag = sys.implementation.cache_tag
    # The source that does not compile is left to fail at import, as without bytecode.
    assert [entry.path for entry in compiled] == [f"opt/site/__pycache__/greeting.{tag}.pyc"]
    root = tmp_path / "image"
    materialise(sources + compiled, root)
    env = {"PYTHONPATH": str(root / "opt/site"), "PYTHONDONTWRITEBYTECODE": "1"}
    answer = subprocess.run(
        [sys.executable, "-v", "-c", "import greeting; print(greeting.WORDS)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pyc = root / compiled[0].path
    assert f"code object from '{pyc}'" in answer.stderr
    assert answer.stdout.strip() == "hello"


def test_an_image_without_python_sources_needs_no_compiler(tmp_path: Path) -> None:
    no_python = tmp_path / "no-such-python"
    entries = [Entry("etc/hosts", b"127.0.0.1 localhost\n"), Entry("opt/x.py", b"x = 1\n")]
    assert bytecode_entries(no_python, entries, tmp_path) == []
