"""The torch engine's forward pass replayed from CUDA graphs, one per (rows, padded
length): at batch 1 the GPU's work takes microseconds and launching some hundred kernels
from Python takes milliseconds (the H100 in-process figure: 2.6 ms a text, against tens of
microseconds of kernels); a graph launches them all in one call.

A batch of ``r`` rows runs in the graph of the next captured row count up, its extra rows
masked to one token and dropped from the answer. Graphs are captured on first use of
their shape (the service warms batch 1 at every length when it starts). All graphs share
one memory pool: that is safe because they run one at a time, in one thread, and each
answer is copied to the host before the next graph runs; the inputs live outside the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GRAPH_ROWS = (1, 2, 4, 8, 16, 32, 64, 128)  # up to the service's slice (model.SLICE_ROWS)
WARMUP_RUNS = 2  # on a side stream before a capture, as PyTorch's CUDA graph notes ask


def graph_rows(rows: int, captured: tuple[int, ...] = GRAPH_ROWS) -> int | None:
    """The captured row count a batch of ``rows`` runs in, or None: beyond every graph."""
    return next((count for count in captured if count >= rows), None)


@dataclass
class _Captured:
    graph: Any
    ids: Any  # (rows, width) int64, on the device: the graph reads its input here
    mask: Any
    vectors: Any  # (rows, dimensions) float32 unit vectors: the graph writes them here


class GraphedForward:
    """``forward(ids, mask) -> unit vectors on the device``, replayed per shape."""

    def __init__(self, torch: Any, forward: Callable[[Any, Any], Any], device: str) -> None:
        self.torch = torch
        self.forward = forward
        self.device = device
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[tuple[int, int], _Captured] = {}

    def __call__(self, ids: Any, mask: Any) -> Any | None:
        """Host (rows, width) int64 arrays to host float32 vectors; None when no graph
        holds that many rows (the caller runs the plain forward)."""
        rows, width = ids.shape
        target = graph_rows(rows)
        if target is None:
            return None
        captured = self.graphs.get((target, width)) or self._capture(target, width)
        torch = self.torch
        captured.ids[:rows].copy_(torch.from_numpy(ids), non_blocking=True)
        captured.mask[:rows].copy_(torch.from_numpy(mask), non_blocking=True)
        if rows < target:
            # Rows beyond the batch: one token each, so no row's attention is all masked.
            captured.ids[rows:].zero_()
            captured.mask[rows:].zero_()
            captured.mask[rows:, 0] = 1
        captured.graph.replay()
        return captured.vectors[:rows].cpu().numpy()

    def _capture(self, rows: int, width: int) -> _Captured:
        torch = self.torch
        ids = torch.zeros((rows, width), dtype=torch.int64, device=self.device)
        mask = torch.ones((rows, width), dtype=torch.int64, device=self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self.forward(ids, mask)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            vectors = self.forward(ids, mask)
        captured = _Captured(graph, ids, mask, vectors)
        self.graphs[(rows, width)] = captured
        return captured
