"""Entry point: parse arguments, dispatch to one verb, map failures to exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from rich.markup import escape

from gpuplane import __version__
from gpuplane.backends.state_root import default_state_root
from gpuplane.cli.backend_choice import add_backend_option
from gpuplane.cli.commands import (
    activator,
    autoscale,
    doctor,
    down,
    gitops,
    gpu_exporter,
    image,
    kubeconfig,
    observability,
    render,
    report,
    sim,
    status,
    toolchain,
    up,
    verify,
)
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode, GpuplaneError

Verb = Callable[[argparse.Namespace, Context], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuplane",
        description="A local GPU Kubernetes platform (local: KWOK or real kubelet nodes; "
        "k3d: k3s nodes in Docker with real GPUs).",
    )
    parser.add_argument("--version", action="version", version=f"gpuplane {__version__}")
    _add_platform_file(parser, Path("platform.yaml"))
    add_backend_option(parser, default=None)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    verb_modules = (up, down, status, kubeconfig, verify, doctor, render, report, observability)
    services = (gpu_exporter, activator, gitops, autoscale)
    for module in (*verb_modules, image, sim, toolchain, *services):
        # SUPPRESS: "-f X" given before the verb is not reset by the verb's own default.
        _add_platform_file(module.register(verbs), argparse.SUPPRESS)
    return parser


def _add_platform_file(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-f",
        "--file",
        dest="platform_file",
        type=Path,
        default=default,
        help="platform file (default: ./platform.yaml)",
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: dict[str, str] | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    context = Context.create(out, err, dict(os.environ) if env is None else env)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        # argparse exits 2 on usage errors and 0 for --help/--version.
        return int(exit_request.code or 0)
    verb: Verb = args.run
    try:
        return verb(args, context)
    except GpuplaneError as error:
        context.err_console.print(
            f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return int(error.exit_code)
    except KeyboardInterrupt:
        context.err_console.print("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the one place a bug becomes an exit code
        report = write_crash_report(context, args.verb, error)
        context.err_console.print(
            f"[bold red]internal error:[/] {escape(type(error).__name__)} in "
            f"'gpuplane {args.verb}' (a bug in gpuplane; please report it); "
            f"traceback: {escape(str(report))}",
            highlight=False,
            soft_wrap=True,
        )
        return int(ExitCode.INTERNAL_ERROR)


def write_crash_report(context: Context, verb: str, error: BaseException) -> Path:
    """Write ``error``'s traceback under the state root's ``crash/``; return the file.

    Falls back to the temp directory when the state root cannot be written.
    """
    text = "".join(traceback.format_exception(error))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for directory in (
        (context.state_root() or default_state_root()) / "crash",
        Path(tempfile.gettempdir()),
    ):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            report = directory / f"gpuplane-{verb}-{stamp}-{os.getpid()}.log"
            report.write_text(f"gpuplane {__version__} {verb}\n{text}", encoding="utf-8")
        except OSError:
            continue
        return report
    return Path("(unwritable)")


def entrypoint() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()

__all__ = ["ExitCode", "main"]
