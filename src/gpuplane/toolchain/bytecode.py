"""Bytecode for an image's Python sources, compiled once when the image is built.

Without it every start of a service compiles each module it imports (the image is
read-only for the service and PYTHONDONTWRITEBYTECODE is set), and a scale-from-zero pays
that on every wake. The image's files carry one fixed mtime, so the usual timestamp-checked
``.pyc`` files would never match their sources; these are hash-based and unchecked (PEP 552):
an image never changes after it is built, and any change of a source is a new image.
Compiled by the image's own interpreter (its magic number and cache tag), in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.toolchain.oci_layout import Entry

# Run by the target interpreter: reads [[host source, path in the image], ...] from the
# jobs file, writes each .pyc under the output directory at its path in the image, prints
# the paths written. A source that does not compile (a test file for another Python
# version) is left without bytecode, as Python itself would at import.
COMPILE = r"""
import importlib.util, json, multiprocessing, os, py_compile, sys
jobs_file, out = sys.argv[1], sys.argv[2]
with open(jobs_file) as handle:
    jobs = json.load(handle)
def compile_one(job):
    source, inside = job
    cached = importlib.util.cache_from_source(inside)
    try:
        py_compile.compile(
            source, cfile=os.path.join(out, cached), dfile="/" + inside, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except Exception:
        return ""
    return cached
with multiprocessing.get_context("fork").Pool() as pool:
    written = [path for path in pool.imap(compile_one, jobs, chunksize=64) if path]
print(json.dumps(written))
"""


def python_sources(entries: Iterable[Entry]) -> list[tuple[Path, str]]:
    """(host file, path in the image) of every Python source among ``entries``."""
    return [
        (entry.source, entry.path)
        for entry in entries
        if entry.source is not None and entry.path.endswith(".py")
    ]


def bytecode_entries(python: Path, entries: Iterable[Entry], scratch: Path) -> list[Entry]:
    """The compiled ``__pycache__/*.pyc`` of every source in ``entries``, written by
    ``python`` under ``scratch`` (which must outlive the image's writing), as entries."""
    jobs = [[str(source), inside] for source, inside in python_sources(entries)]
    if not jobs:
        return []
    jobs_file = scratch / "jobs.json"
    jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
    out = scratch / "root"
    output = run_command(
        [str(python), "-c", COMPILE, str(jobs_file), str(out)],
        timeout=900,
        what=f"compiling the image's {len(jobs)} Python sources with {python}",
    )
    return [Entry(inside, source=out / inside) for inside in json.loads(output)]
