"""Read a ``.safetensors`` file into numpy arrays with the format's own package
(``safetensors``), turning its errors into one that names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class WeightsError(ValueError):
    """The weights file is not what the encoder needs; the message names the file."""


def load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError  # noqa: PLC0415 - the service's dependency
    from safetensors.numpy import load_file  # noqa: PLC0415

    try:
        return dict(load_file(str(path)))
    except SafetensorError as error:
        raise WeightsError(f"{path}: not a safetensors file this server reads ({error})") from error
    except (OSError, ValueError, TypeError) as error:
        raise WeightsError(f"{path}: {error}") from error
