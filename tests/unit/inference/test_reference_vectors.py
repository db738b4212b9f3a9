"""The CPU engines (onnxruntime, the image's; numpy) against sentence-transformers itself:
200 varied texts
whose fp32 vectors sentence-transformers computed once on the GPU machine
(bench/embedding_engines.py --reference-out; the file records the versions and the
card). Every vector must point the same way: cosine at least 0.999."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from gpuplane.inference.model import packaged_embedder

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "embeddings" / "reference.npz"


@pytest.mark.parametrize("engine", ["onnxruntime", "numpy"])
def test_cpu_vectors_match_sentence_transformers(engine: str) -> None:
    stored = numpy.load(REFERENCE)
    texts = [str(text) for text in stored["texts"]]
    reference = stored["vectors"].astype(numpy.float64)
    assert len(texts) == len(reference) >= 200
    vectors, _ = packaged_embedder(engine)(texts)
    ours = numpy.stack(vectors).astype(numpy.float64)
    cosine = (ours * reference).sum(axis=1) / (
        numpy.linalg.norm(ours, axis=1) * numpy.linalg.norm(reference, axis=1)
    )
    worst = int(cosine.argmin())
    assert cosine[worst] >= 0.999, (texts[worst][:80], float(cosine[worst]))
    assert "sentence-transformers" in str(stored["produced_by"])


def test_the_reference_is_not_our_own_output() -> None:
    """A file written by our engine would make the test above pass by construction: the
    reference carries sentence-transformers' provenance, and its vectors differ from ours
    in the low digits (another implementation, another device)."""
    stored = numpy.load(REFERENCE)
    vectors, _ = packaged_embedder()([str(t) for t in stored["texts"][:20]])
    difference = numpy.abs(numpy.stack(vectors) - stored["vectors"][:20]).max()
    assert difference > 0, "identical to the numpy engine's output: not an independent reference"
    assert difference < 0.01
