"""The encoder on the packaged all-MiniLM-L6-v2 weights (numpy), against figures
sentence-transformers publishes for the same model."""

from __future__ import annotations

import numpy
import pytest

from gpuplane.inference.model import (
    Encoder,
    EncoderConfig,
    Tokenizer,
    packaged_model_dir,
    read_weights,
)
from gpuplane.inference.ops import NumpyOps


@pytest.fixture(scope="module")
def embed() -> object:
    directory = packaged_model_dir()
    config = EncoderConfig.read(directory)
    encoder = Encoder(config, read_weights(directory), NumpyOps())
    tokenizer = Tokenizer(directory, config.max_tokens)
    return lambda texts: encoder.embed(tokenizer.batch(texts))


def test_vectors_are_384_dimensional_and_unit_length(embed: object) -> None:
    vectors = embed(["hello world", "a much longer sentence about GPUs and Kubernetes nodes"])  # type: ignore[operator]
    assert vectors.shape == (2, 384)
    assert numpy.allclose(numpy.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_published_similarity_of_two_sentences(embed: object) -> None:
    # sentence-transformers' semantic-search example: 0.7553 for these two.
    vectors = embed(["A man is eating food.", "A man is eating a piece of bread."])  # type: ignore[operator]
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.7553, abs=0.001)


def test_padding_does_not_change_a_sentence_vector(embed: object) -> None:
    alone = embed(["short"])  # type: ignore[operator]
    padded = embed(["short", "a far longer sentence that makes the batch pad the short one"])  # type: ignore[operator]
    assert numpy.allclose(alone[0], padded[0], atol=1e-5)


def test_long_input_is_truncated_not_refused(embed: object) -> None:
    vectors = embed(["word " * 2000])  # type: ignore[operator]
    assert vectors.shape == (1, 384)
