"""Read platform.yaml into a validated ``Platform``, or fail naming file, line, node, field.

Nothing is created before this succeeds: every verb loads the topology first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gpuplane.errors import BadInputError
from gpuplane.shared.quoting import QUOTED_CHARS, quoted
from gpuplane.topology.model import DEPRECATED_BACKEND_NAMES, Platform
from gpuplane.topology.rules import Path as DocPath
from gpuplane.topology.rules import Problem, check_rules

DEFAULT_PLATFORM_FILE = Path("platform.yaml")
# Limits on the document before it is parsed: a platform file is a few kB, 4 levels deep.
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_NESTING = 64
MAX_ALIASES = 100
_OPENS = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
log = logging.getLogger("gpuplane.topology")


class TopologyError(BadInputError):
    """platform.yaml cannot be used; ``lines`` lists every reason found."""

    def __init__(self, file: Path, lines: list[str]) -> None:
        self.file = file
        self.lines = lines
        count = len(lines)
        header = f"{file} is invalid ({count} problem{'s' if count != 1 else ''}); nothing was done"
        super().__init__("\n".join([header, *(f"  {line}" for line in lines)]))


def load_platform(file: Path = DEFAULT_PLATFORM_FILE, *, backend: str | None = None) -> Platform:
    """Load and validate ``file``; raise ``TopologyError`` listing every problem.
    ``backend`` (``--backend``) replaces spec.backend BEFORE validation, so every rule
    (the runtime rules among them) judges the platform that will actually be built."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(file, ["file not found (pass another with -f)"]) from None
    except OSError as error:
        raise TopologyError(file, [f"cannot be read: {error.strerror}"]) from error
    return parse_platform(text, file, backend=backend)


def limit_problem(text: str) -> str | None:
    """What makes ``text`` too big, too deep or too aliased to parse, if anything.

    PyYAML composes recursively (a 5,000-level document overflows the stack) and
    expands aliases while validating: both are checked on the token stream first, which
    its scanner produces without recursion.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_DOCUMENT_BYTES:
        return f"the document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}"
    depth = aliases = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPENS):
                depth += 1
                if depth > MAX_NESTING:
                    line = token.start_mark.line + 1
                    return f"line {line}: nested deeper than {MAX_NESTING} levels"
            elif isinstance(token, _CLOSES):
                depth -= 1
            elif isinstance(token, yaml.AliasToken):
                aliases += 1
                if aliases > MAX_ALIASES:
                    return f"more than {MAX_ALIASES} aliases (*name)"
    except yaml.YAMLError:
        return None  # a syntax error: the parser reports it with its place
    return None


def parse_platform(text: str, file: Path, *, backend: str | None = None) -> Platform:
    """Validate the YAML ``text`` that came from ``file`` (used in messages), with
    spec.backend replaced by ``backend`` when given."""
    too_much = limit_problem(text)
    if too_much is not None:
        raise TopologyError(file, [f"{file}: {too_much}"])
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        raise TopologyError(file, [f"{where}: YAML syntax error: {error.problem}"]) from None
    except yaml.YAMLError as error:
        raise TopologyError(file, [f"{file}: YAML syntax error: {error}"]) from None
    if not isinstance(data, dict):
        raise TopologyError(file, [f"{file}:1: the document must be a mapping (a Platform)"])
    if backend is not None and isinstance(data.get("spec"), dict):
        data["spec"]["backend"] = backend

    try:
        platform = Platform.model_validate(data)
    except ValidationError as error:
        problems = [_problem_from_pydantic(item) for item in error.errors()]
    else:
        problems = check_rules(platform)
        if not problems:
            _warn_deprecated(data, file)
            return platform
    located = sorted(
        ((_line_of(document, problem.path), problem) for problem in problems),
        key=lambda pair: pair[0],
    )
    lines = [_describe(problem, line, data, file) for line, problem in located]
    if backend is not None:
        lines.append(f"(spec.backend is {backend!r} here: given by --backend)")
    raise TopologyError(file, lines)


def _warn_deprecated(data: dict[str, Any], file: Path) -> None:
    spec = data.get("spec")
    old = spec.get("backend") if isinstance(spec, dict) else None
    if isinstance(old, str) and old in DEPRECATED_BACKEND_NAMES:
        log.warning(
            "%s: backend %r is deprecated, read as %r (it runs real kubelet nodes too now)",
            file,
            old,
            DEPRECATED_BACKEND_NAMES[old],
        )


def _problem_from_pydantic(item: Any) -> Problem:
    path: DocPath = tuple(item["loc"])
    kind: str = item["type"]
    message: str = item["msg"]
    if kind == "extra_forbidden":
        message = f"unknown field {quoted(path[-1])}"
    elif kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        message = f"unknown {path[-1]} {quoted(item['input'])} (expected {expected})"
    elif kind == "missing":
        message = f"required field {quoted(path[-1])} is missing"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return Problem(path, message)


def _describe(problem: Problem, line: int, data: dict[str, Any], file: Path) -> str:
    node = _node_name(data, problem.path)
    where = (
        f"node {quoted(node)}, field {_dotted(problem.path)}"
        if node
        else f"field {_dotted(problem.path)}"
    )
    return f"{file}:{line}: {where}: {problem.message}"


def _dotted(path: DocPath) -> str:
    """spec.nodes[2].labels.x; a field name is cut like a quoted value (the fuzz found a
    100 kB key coming back whole)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if len(part) <= QUOTED_CHARS else quoted(part)
        text += f".{name}" if text else name
    return text


def _node_name(data: dict[str, Any], path: DocPath) -> str | None:
    """The name of the node a path points into, if it points into spec.nodes[i]."""
    if len(path) < 3 or path[:2] != ("spec", "nodes") or not isinstance(path[2], int):
        return None
    nodes = data.get("spec", {}).get("nodes") if isinstance(data.get("spec"), dict) else None
    if isinstance(nodes, list) and path[2] < len(nodes) and isinstance(nodes[path[2]], dict):
        name = nodes[path[2]].get("name")
        return str(name) if name is not None else f"#{path[2]}"
    return None


def _line_of(document: Any, path: DocPath) -> int:
    """1-based line of the deepest YAML node the path reaches (the key for mapping entries)."""
    current = document
    line: int = current.start_mark.line + 1 if current is not None else 1
    for part in path:
        if isinstance(current, yaml.MappingNode):
            entry = next((kv for kv in current.value if kv[0].value == part), None)
            if entry is None:
                break
            line, current = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            break
    return line
