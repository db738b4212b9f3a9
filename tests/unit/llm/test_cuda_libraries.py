"""Which CUDA libraries a CUDA build of llama.cpp gets from NVIDIA's pip packages, in both
layouts torch's wheels have used: one package per library (CUDA 12) and one directory per
CUDA major (CUDA 13); the soname, not a fully versioned file; none on a CPU-only host."""

from __future__ import annotations

from pathlib import Path

from gpuplane.llm.cuda_libraries import cuda_library_files


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_cuda_13_layout_one_directory(tmp_path: Path) -> None:
    touch(tmp_path, "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcudart.so.13.0.96",
          "nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13")  # fmt: skip
    found = cuda_library_files([tmp_path])
    assert [p.name for p in found] == ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13"]


def test_cuda_12_layout_one_package_per_library(tmp_path: Path) -> None:
    touch(tmp_path, "nvidia/cuda_runtime/lib/libcudart.so.12",
          "nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/lib/libcublasLt.so.12")  # fmt: skip
    found = cuda_library_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "nvidia/cuda_runtime/lib/libcudart.so.12",
        "nvidia/cublas/lib/libcublasLt.so.12",
        "nvidia/cublas/lib/libcublas.so.12",
    ]


def test_the_first_site_directory_that_has_one_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    touch(first, "nvidia/cu13/lib/libcudart.so.13")
    touch(second, "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcublas.so.13")
    found = cuda_library_files([tmp_path / "empty", first, second])
    assert found == [
        first / "nvidia/cu13/lib/libcudart.so.13",
        second / "nvidia/cu13/lib/libcublas.so.13",
    ]


def test_none_without_nvidia_packages(tmp_path: Path) -> None:
    touch(tmp_path, "numpy/__init__.py")
    assert cuda_library_files([tmp_path, tmp_path / "missing"]) == []
