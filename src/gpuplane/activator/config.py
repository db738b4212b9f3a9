"""The activator's routes file (pure): which requests go to which backend, and the limits.

Routing is by path prefix or by Host header, per backend: a path prefix lets one address
front every backend (``/ml/inference/v1/embeddings``), a host suits an ingress that gives
each app its own name. Bad input names the file and the entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

DEFAULT_MAX_HELD = 1000
DEFAULT_MAX_HOLD_SECONDS = 300.0  # GPU model servers take minutes to become ready
ENDPOINTS = "endpoints:"


class ConfigError(ValueError):
    """The routes file is not usable; the message says where."""


@dataclass(frozen=True)
class FixedUpstream:
    """An ``http(s)://host[:port]`` upstream: the Service's address, through kube-proxy."""

    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class EndpointsUpstream:
    """``endpoints:PORT``: the ready endpoints' own addresses, round robin (no kube-proxy
    needed: what the local backend's kubelet nodes have)."""

    port: int


Upstream = FixedUpstream | EndpointsUpstream


def parse_upstream(text: str, where: str) -> Upstream:
    """The routes file's ``upstream``, parsed once when the file is read."""
    if text.startswith(ENDPOINTS):
        port = text.removeprefix(ENDPOINTS)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{where}: upstream {text!r}: endpoints:PORT needs a port")
        return EndpointsUpstream(int(port))
    parts = urlsplit(text)
    try:
        port_given = parts.port
    except ValueError:
        port_given = -1
    if parts.scheme not in {"http", "https"} or not parts.hostname or port_given == -1:
        raise ConfigError(
            f"{where}: upstream {text!r} is neither an http(s) URL nor endpoints:PORT"
        )
    tls = parts.scheme == "https"
    return FixedUpstream(parts.hostname, port_given or (443 if tls else 80), tls)


@dataclass(frozen=True)
class Backend:
    name: str
    namespace: str
    deployment: str
    service: str  # whose EndpointSlices say when it is ready
    upstream: Upstream  # where requests go
    host: str = ""
    path_prefix: str = ""
    strip_prefix: bool = False
    max_held: int = DEFAULT_MAX_HELD
    max_hold_seconds: float = DEFAULT_MAX_HOLD_SECONDS
    # While requests are held, starting endpoints are probed here by the activator itself
    # (endpoints:PORT only; early_ready.py); "" leaves readiness to Kubernetes alone.
    probe_path: str = ""

    def matches(self, host: str, path: str) -> bool:
        if self.host and host.split(":", 1)[0] != self.host:
            return False
        return not self.path_prefix or path.startswith(self.path_prefix)

    def upstream_path(self, path: str) -> str:
        if self.strip_prefix and self.path_prefix:
            rest = path[len(self.path_prefix) :]
            return rest if rest.startswith("/") else "/" + rest
        return path


@dataclass(frozen=True)
class Routes:
    backends: tuple[Backend, ...]

    def route(self, host: str, path: str) -> Backend | None:
        """The first backend that matches, in file order."""
        return next((b for b in self.backends if b.matches(host, path)), None)


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise ConfigError(f"{where}: '{key}' must be a non-empty string")
    return value


def _number(entry: dict[str, Any], key: str, default: float, where: str) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a positive number, not {value!r}")
    return float(value)


def _probe_path(entry: dict[str, Any], upstream: Upstream, where: str) -> str:
    path = _text(entry, "probePath", where, required=False)
    if not path:
        return ""
    if not path.startswith("/") or any(c.isspace() or not c.isprintable() for c in path):
        raise ConfigError(f"{where}: probePath {path!r} must be a path starting with '/'")
    if not isinstance(upstream, EndpointsUpstream):
        raise ConfigError(
            f"{where}: probePath needs upstream endpoints:PORT (through a Service only "
            "ready endpoints are reached)"
        )
    return path


def parse_routes(document: Any, source: str = "routes") -> Routes:
    if not isinstance(document, dict) or not isinstance(document.get("backends"), list):
        raise ConfigError(f"{source}: needs a 'backends' list")
    limits = document.get("limits") or {}
    if not isinstance(limits, dict):
        raise ConfigError(f"{source}: 'limits' must be a mapping")
    max_held = _number(limits, "maxHeld", DEFAULT_MAX_HELD, f"{source}: limits")
    max_hold = _number(limits, "maxHoldSeconds", DEFAULT_MAX_HOLD_SECONDS, f"{source}: limits")
    backends = []
    names: set[str] = set()
    for index, entry in enumerate(document["backends"]):
        where = f"{source}: backends[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping")
        name = _text(entry, "name", where)
        if name in names:
            raise ConfigError(f"{where}: name {name!r} is used twice")
        names.add(name)
        upstream = parse_upstream(_text(entry, "upstream", where), where)
        match = entry.get("match") or {}
        if not isinstance(match, dict):
            raise ConfigError(f"{where}: 'match' must be a mapping")
        host = _text(match, "host", where, required=False)
        prefix = _text(match, "pathPrefix", where, required=False)
        if not host and not prefix:
            raise ConfigError(f"{where}: 'match' needs a host or a pathPrefix")
        if prefix and not prefix.startswith("/"):
            raise ConfigError(f"{where}: pathPrefix {prefix!r} must start with '/'")
        probe_path = _probe_path(entry, upstream, where)
        backends.append(
            Backend(
                name=name,
                namespace=_text(entry, "namespace", where),
                deployment=_text(entry, "deployment", where),
                service=_text(entry, "service", where),
                upstream=upstream,
                host=host,
                path_prefix=prefix,
                strip_prefix=bool(entry.get("stripPrefix", False)),
                max_held=int(_number(entry, "maxHeld", max_held, where)),
                max_hold_seconds=_number(entry, "maxHoldSeconds", max_hold, where),
                probe_path=probe_path,
            )
        )
    return Routes(tuple(backends))


def load_routes(path: Path) -> Routes:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not YAML ({error})") from error
    return parse_routes(document, str(path))
