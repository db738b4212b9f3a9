"""Hypothesis strategies shared by the fuzz targets: JSON-like values and mutations of a
valid document (replace a value anywhere, delete a key, add one)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(max_size=5000).map(lambda text: text * 20),  # long values: bounded messages
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``document`` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any], steps: int = 3) -> dict[str, Any]:
    document: Any = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=steps))):
        where = draw(st.sampled_from(paths(document)))
        if not where:
            continue
        parent: Any = document
        for part in where[:-1]:
            parent = parent[part]
        kind = draw(st.sampled_from(["replace", "delete", "add"]))
        if kind == "replace":
            parent[where[-1]] = draw(json_like)
        elif kind == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        elif kind == "delete" and isinstance(parent, list):
            parent.pop(where[-1])
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_like)
    return dict(document) if isinstance(document, dict) else {"document": document}
