"""``gpuplane image build|load``: the platform's images, offline (OCI layouts written by
gpuplane, no registry), and their import into the kubelet nodes' containerd."""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path
from typing import Any

from rich.table import Table

from gpuplane.backends.base import ImageStore
from gpuplane.cli.backend_choice import image_store, opened
from gpuplane.cli.context import Context
from gpuplane.cli.python_choice import add_python_option, chosen_interpreter
from gpuplane.cli.render import print_json
from gpuplane.errors import BadInputError, ExitCode
from gpuplane.toolchain.images import DEFAULT_SERVICES, SERVICE_IMAGES, BuiltImage
from gpuplane.toolchain.oci_layout import layout_names
from gpuplane.topology import Platform


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "image", help="build the platform's images offline, load them into kubelet nodes"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="(re)build pause, toolbox (and the device plugin's), and gpuplane's service "
        "images (inference, gpu-exporter) as OCI layouts",
    )
    build.add_argument("-o", "--output", choices=["table", "json"], default="table")
    add_python_option(build, "the service images are assembled from")
    build.add_argument(
        "--services",
        action="store_true",
        help="only the service images: a GPU host without Go or busybox keeps its packed "
        "platform images",
    )
    build.add_argument(
        "--service",
        action="append",
        choices=sorted(SERVICE_IMAGES),
        default=[],
        help="only this service's image (repeatable; implies --services)",
    )
    loader = actions.add_parser(
        "load",
        help="import images into every kubelet node (default: the platform's own and "
        "gpuplane's services', built from this interpreter when missing)",
    )
    loader.add_argument("files", nargs="*", type=Path, metavar="OCI_LAYOUT_TAR")
    loader.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def _store(args: argparse.Namespace, context: Context) -> tuple[ImageStore, Platform]:
    backend, resolved = opened(args, context)
    return image_store(backend, "image"), resolved.platform


def _given(files: list[Path]) -> list[BuiltImage]:
    images = []
    for file in files:
        try:
            names = layout_names(file)
        except (OSError, KeyError, ValueError, tarfile.TarError) as error:
            raise BadInputError(f"{file}: not an OCI layout tar ({error})") from error
        if not names:
            raise BadInputError(f"{file}: its index.json names no image")
        images.append(BuiltImage(file.name, names, file))
    return images


def run(args: argparse.Namespace, context: Context) -> int:
    backend, platform = _store(args, context)
    if args.action == "build":
        interpreter = chosen_interpreter(args)
        only = args.services or bool(args.service)
        images = [] if only else backend.build_images(platform, rebuild=True)
        context.reporter().step(f"assembling the service images from {interpreter.python}")
        kinds = tuple(args.service) or DEFAULT_SERVICES
        images += backend.build_service_images(
            platform, interpreter.python, interpreter.site_dirs, kinds
        )
        if args.output == "json":
            print_json(context, [{**vars(i), "bytes": i.file.stat().st_size} for i in images])
            return int(ExitCode.OK)
        table = Table("IMAGE", "NAMES", "BYTES", "FILE", box=None)
        for image in images:
            size = str(image.file.stat().st_size)
            table.add_row(image.name, ", ".join(image.names), size, str(image.file))
        context.console.print(table)
        return int(ExitCode.OK)
    if args.files:
        images = _given(args.files)
    else:
        python = Path(sys.executable)
        images = [*backend.build_images(platform), *backend.build_service_images(platform, python)]
    loaded = backend.load_images(platform, images)
    if args.output == "json":
        print_json(context, loaded)
        return int(ExitCode.OK)
    table = Table("NODE", "IMPORTED", box=None)
    for node, names in loaded.items():
        table.add_row(node, ", ".join(names) or "- (all present)")
    context.console.print(table)
    return int(ExitCode.OK)
