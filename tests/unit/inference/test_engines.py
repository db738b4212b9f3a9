"""The engine choice (pure) and the length-sorted slicing of a batch (the numpy engine on
the packaged weights)."""

from __future__ import annotations

import numpy
import pytest
from tokenizers import Tokenizer as HfTokenizer

from gpuplane.inference.cuda_graphs import graph_rows
from gpuplane.inference.engines import EngineChoice, choose_engine
from gpuplane.inference.model import (
    Encoder,
    EncoderConfig,
    Tokenizer,
    embedder,
    packaged_model_dir,
    read_weights,
)
from gpuplane.inference.ops import NumpyOps


@pytest.mark.parametrize(
    ("flags", "cuda", "chosen"),
    [
        (("auto", "auto", "auto"), True, EngineChoice("torch", "cuda", "float16")),
        (("auto", "auto", "auto"), False, EngineChoice("numpy", "cpu", "float32")),
        (("auto", "auto", "bfloat16"), True, EngineChoice("torch", "cuda", "bfloat16")),
        (("numpy", "auto", "auto"), True, EngineChoice("numpy", "cpu", "float32")),
        (("transformers", "cpu", "auto"), True, EngineChoice("transformers", "cpu", "float32")),
        (("auto", "cpu", "auto"), True, EngineChoice("numpy", "cpu", "float32")),
        (("torch", "auto", "auto"), True, EngineChoice("torch", "cuda", "float16")),
        (("torch", "auto", "auto"), False, EngineChoice("torch", "cpu", "float32")),
    ],
)
def test_the_engine_follows_the_device(
    flags: tuple[str, str, str], cuda: bool, chosen: EngineChoice
) -> None:
    assert choose_engine(*flags, cuda=cuda) == chosen


@pytest.mark.parametrize(
    ("flags", "cuda", "chosen"),
    [
        (("auto", "auto", "auto"), False, EngineChoice("onnxruntime", "cpu", "float32")),
        (("auto", "cpu", "auto"), True, EngineChoice("onnxruntime", "cpu", "float32")),
        (("onnxruntime", "auto", "auto"), True, EngineChoice("onnxruntime", "cpu", "float32")),
        (("auto", "auto", "auto"), True, EngineChoice("torch", "cuda", "float16")),
        (("numpy", "auto", "auto"), False, EngineChoice("numpy", "cpu", "float32")),
    ],
)
def test_onnxruntime_is_the_cpu_engine_where_installed(
    flags: tuple[str, str, str], cuda: bool, chosen: EngineChoice
) -> None:
    assert choose_engine(*flags, cuda=cuda, onnxruntime=True) == chosen


def test_onnxruntime_asked_for_but_absent_is_named() -> None:
    with pytest.raises(ValueError, match=r"onnxruntime .* is not installed"):
        choose_engine("onnxruntime", "auto", "auto", cuda=False, onnxruntime=False)


@pytest.mark.parametrize(
    ("flags", "cuda", "graphs"),
    [
        (("auto", "auto", "auto"), True, True),  # torch on CUDA: graphs where asked
        (("auto", "auto", "auto"), False, False),  # numpy on the CPU
        (("torch", "cpu", "auto"), True, False),  # no CUDA graph on the CPU
        (("transformers", "auto", "auto"), True, False),  # transformers' own forward
    ],
)
def test_cuda_graphs_only_for_the_torch_engine_on_cuda(
    flags: tuple[str, str, str], cuda: bool, graphs: bool
) -> None:
    assert choose_engine(*flags, cuda=cuda, cuda_graphs=True).cuda_graphs is graphs
    assert choose_engine(*flags, cuda=cuda, cuda_graphs=False).cuda_graphs is False


@pytest.mark.parametrize(
    ("rows", "graph"), [(1, 1), (2, 2), (3, 4), (33, 64), (128, 128), (129, None)]
)
def test_a_batch_runs_in_the_next_captured_row_count(rows: int, graph: int | None) -> None:
    assert graph_rows(rows) == graph


@pytest.mark.parametrize(
    ("flags", "cuda", "fragment"),
    [
        (("auto", "cuda", "auto"), False, "--device cuda: torch sees no CUDA"),
        (("numpy", "cuda", "auto"), True, "--engine numpy runs on the CPU only"),
        (("onnxruntime", "cuda", "auto"), True, "--engine onnxruntime runs on the CPU only"),
        (("numpy", "cpu", "float16"), False, "float32 only, not float16"),
        (("onnx", "cpu", "auto"), False, "unknown --engine 'onnx'"),
    ],
)
def test_impossible_combinations_are_named(
    flags: tuple[str, str, str], cuda: bool, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        choose_engine(*flags, cuda=cuda, onnxruntime=True)


@pytest.fixture(scope="module")
def parts() -> tuple[Encoder, Tokenizer]:
    directory = packaged_model_dir()
    config = EncoderConfig.read(directory)
    return Encoder(config, read_weights(directory), NumpyOps()), Tokenizer(
        directory, config.max_tokens
    )


def test_sorted_slices_pad_less_and_keep_every_text(parts: tuple[Encoder, Tokenizer]) -> None:
    _, tokenizer = parts
    texts = ["word " * n for n in (40, 2, 30, 1, 25, 3)]
    slices = tokenizer.sorted_batches(texts, rows=2)
    assert sorted(i for indices, _ in slices for i in indices) == list(range(len(texts)))
    padded_sorted = sum(batch.ids.size for _, batch in slices)
    assert padded_sorted < tokenizer.batch(texts).ids.size
    # Each slice pads to its own longest: the last column holds a real token somewhere.
    assert all(batch.mask[:, -1].any() for _, batch in slices)
    # Bucketed (the GPU engine's 16): widths are multiples of 16, under 16 tokens of padding.
    bucketed = tokenizer.sorted_batches(texts, rows=2, length_multiple=16)
    for (indices, exact), (same, padded) in zip(slices, bucketed, strict=True):
        assert indices == same
        assert padded.ids.shape[1] % 16 == 0
        assert 0 <= padded.ids.shape[1] - exact.ids.shape[1] < 16
        width = exact.ids.shape[1]
        assert (padded.ids[:, :width] == exact.ids).all()
        assert not padded.mask[:, width:].any() and not padded.ids[:, width:].any()


def test_sliced_vectors_equal_one_batch_in_the_callers_order(
    parts: tuple[Encoder, Tokenizer],
) -> None:
    encoder, tokenizer = parts
    texts = [f"sentence {i} " + "about GPUs " * (i % 9) for i in range(11)]
    vectors, tokens = embedder(encoder, tokenizer, rows=3)(texts)
    whole = tokenizer.batch(texts)
    expected = encoder.embed(whole)
    assert numpy.allclose(numpy.stack(vectors), expected, atol=1e-5)
    assert tokens == [int(n) for n in whole.mask.sum(axis=1)]
    # Padding to a bucket changes no vector (masked tokens count for nothing).
    padded = encoder.embed(tokenizer.batch(texts, length_multiple=16))
    assert numpy.allclose(padded, expected, atol=1e-5)


def test_each_row_holds_exactly_its_texts_tokens(parts: tuple[Encoder, Tokenizer]) -> None:
    """The whole-array fill puts every text's ids in its own row, then zeros."""
    _, tokenizer = parts
    texts = ["GPU", "a longer sentence about the scheduler and its queue", "", "zero wake"]
    reference = HfTokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
    reference.no_padding()
    for indices, batch in tokenizer.sorted_batches(texts, rows=3, length_multiple=16):
        for row, index in enumerate(indices):
            expected = reference.encode(texts[index]).ids
            assert batch.ids[row, : len(expected)].tolist() == expected
            assert batch.mask[row].sum() == len(expected)
            assert not batch.ids[row, len(expected) :].any()
