"""CUDA's runtime libraries for a CUDA build of llama.cpp, taken from NVIDIA's pip packages.

A llama.cpp built against CUDA's toolkit needs libcudart and libcublas at load time, found
by their sonames. On the build host the toolkit's directory is on the loader's path; in a
service image assembled from a torch environment it is not, but torch's own dependencies
(NVIDIA's pip packages: ``nvidia/<package>/lib/``) carry the same libraries. Loaded first
with RTLD_GLOBAL, they satisfy llama.cpp's dependencies by soname: what torch itself does
for its CUDA libraries.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# In dependency order: cuBLAS needs cuBLASLt, and both need the runtime.
NEEDED = ("libcudart.so", "libcublasLt.so", "libcublas.so")


def cuda_library_files(site_dirs: Iterable[Path]) -> list[Path]:
    """For each of NEEDED, the first ``nvidia/*/lib/<name>.<major>`` found under the first
    site directory that has one (absent names are left out: a CPU build needs none)."""
    found: list[Path] = []
    directories = [d for d in site_dirs if (d / "nvidia").is_dir()]
    for name in NEEDED:
        for directory in directories:
            matches = sorted((directory / "nvidia").glob(f"*/lib/{name}.[0-9]*"))
            if matches:
                # The shortest name is the soname (libcudart.so.13), not a versioned file.
                found.append(min(matches, key=lambda path: len(path.name)))
                break
    return found


def preload_cuda_libraries() -> list[Path]:
    """Load the CUDA libraries from NVIDIA's pip packages on ``sys.path``, globally, before
    llama.cpp's own libraries are loaded; the files loaded (none where there are none)."""
    files = cuda_library_files(Path(entry) for entry in sys.path if entry)
    for file in files:
        ctypes.CDLL(str(file), mode=ctypes.RTLD_GLOBAL)
    return files


@dataclass(frozen=True)
class LlamaLoad:
    failed: str  # "" when loaded (or not installed), else why it cannot be loaded
    cuda_libraries: tuple[Path, ...]  # loaded from NVIDIA's packages first


@functools.cache
def load_llama_cpp() -> LlamaLoad:
    """Where llama-cpp-python is installed: NVIDIA's CUDA libraries (if any) and then its
    own, loaded once per process (the answer is kept: sys.path is scanned once), before
    anything else in the process loads a C++ extension.

    Why first: on the GPU machine (H100, 2026-12-07) a CUDA build of llama.cpp crashed
    (SIGSEGV in llama_model_load_from_file) in every process that had imported frozenlist
    (aiohttp's C++ extension) before it, and loaded the model in every process that
    imported llama_cpp first, aiohttp after."""
    if importlib.util.find_spec("llama_cpp") is None:
        return LlamaLoad("", ())
    files = tuple(preload_cuda_libraries())
    try:
        importlib.import_module("llama_cpp")
    except (OSError, RuntimeError) as error:  # its libraries, or theirs, failed to load
        return LlamaLoad(str(error), files)
    return LlamaLoad("", files)
