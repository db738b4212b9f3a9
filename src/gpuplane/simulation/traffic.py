"""The traffic simulator process: serves /metrics for Prometheus and /traffic to control
rates, and follows Deployments' ready replicas, GPU pods and gpu nodes by polling the API.

Run by the local backend: ``python -m gpuplane.simulation.traffic --kubeconfig K --port P``.
Rates persist in ``--rates FILE`` so a restart keeps them.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod

from gpuplane.kube import connect
from gpuplane.kube.nodes import GPU_RESOURCE, read_node
from gpuplane.simulation.gpu_metrics import GpuHolder, GpuNode, dcgm_exposition, deployment_of
from gpuplane.simulation.traffic_book import TrafficBook, rate_problem

log = logging.getLogger("gpuplane.traffic")
# A rates request is a few hundred bytes per Deployment; 5,000 of them fit well in this.
MAX_BODY_BYTES = 4 * 1024 * 1024


class BadBody(ValueError):
    """The request's body cannot be read: ``status`` says how to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_length(header: str | None) -> int:
    """Content-Length, validated before any byte is read: digits only (a negative or
    malformed length would block a reader thread or raise deep inside), within the limit."""
    if header is None:
        return 0
    text = header.strip()
    if not text.isdigit():
        raise BadBody(400, f"Content-Length {header!r} is not a length")
    if int(text) > MAX_BODY_BYTES:
        raise BadBody(413, f"body of {text} bytes is over the {MAX_BODY_BYTES}-byte limit")
    return int(text)


class Simulator:
    def __init__(self, rates_file: Path | None) -> None:
        self.book = TrafficBook()
        self.holders: dict[tuple[str, str], GpuHolder] = {}
        self.gpu_nodes: dict[str, GpuNode] = {}
        self.lock = threading.Lock()
        self.rates_file = rates_file
        if rates_file is not None and rates_file.is_file():
            for row in json.loads(rates_file.read_text()):
                self.book.set_rate(
                    (row["namespace"], row["deployment"]), float(row["rps"]), time.monotonic()
                )

    def set_rate(self, namespace: str, deployment: str, rps: float) -> None:
        self.set_rates([(namespace, deployment, rps)])

    def set_rates(self, rates: list[tuple[str, str, float]]) -> None:
        """Set several rates at once (all or none); the rates file is written once."""
        problems = [
            f"{ns}/{name}: {problem}"
            for ns, name, rps in rates
            if (problem := rate_problem(rps)) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems[:3]))
        with self.lock:
            now = time.monotonic()
            for namespace, deployment, rps in rates:
                self.book.set_rate((namespace, deployment), rps, now)
            rows = [
                {k: row[k] for k in ("namespace", "deployment", "rps")} for row in self.book.table()
            ]
        if self.rates_file is not None:
            tmp = self.rates_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows))
            tmp.replace(self.rates_file)

    def on_deployment(self, deployment: Deployment) -> None:
        meta, status = deployment.metadata, deployment.status
        if meta is None or meta.name is None or meta.namespace is None:
            return
        ready = bool(status and (status.readyReplicas or 0) > 0)
        with self.lock:
            self.book.set_ready((meta.namespace, meta.name), ready, time.monotonic())

    def on_pod(self, pod: Pod) -> None:
        """Track pods that hold GPUs (for the simulated DCGM series)."""
        meta, spec, status = pod.metadata, pod.spec, pod.status
        if meta is None or meta.name is None or meta.namespace is None or spec is None:
            return
        key = (meta.namespace, meta.name)
        gpus = sum(
            int(str(((c.resources.limits if c.resources else None) or {}).get(GPU_RESOURCE, 0)))
            for c in spec.containers
        )
        finished = status is not None and status.phase in ("Succeeded", "Failed")
        with self.lock:
            if finished or not gpus or not spec.nodeName:
                self.holders.pop(key, None)
                return
            owner = next(
                (o.name for o in meta.ownerReferences or [] if o.kind == "ReplicaSet"), None
            )
            self.holders[key] = GpuHolder(
                meta.namespace,
                meta.name,
                spec.containers[0].name,
                spec.nodeName,
                gpus,
                deployment_of(owner),
            )

    def on_node(self, node: Node) -> None:
        """Track simulated gpu nodes: their GPU count, model and memory (GFD labels).

        A real (kubelet) gpu node is never simulated: its GPU series come from a real
        exporter or not at all.
        """
        meta, status = node.metadata, node.status
        if meta is None or meta.name is None:
            return
        if not read_node(node.to_dict()).simulated:
            with self.lock:
                self.gpu_nodes.pop(meta.name, None)
            return
        capacity = (status.capacity if status and status.capacity else {}) or {}
        labels = meta.labels or {}
        gpus = int(labels.get("nvidia.com/gpu.count", capacity.get(GPU_RESOURCE, "0")))
        with self.lock:
            if gpus <= 0:
                self.gpu_nodes.pop(meta.name, None)
                return
            self.gpu_nodes[meta.name] = GpuNode(
                meta.name,
                gpus,
                labels.get("nvidia.com/gpu.product", "NVIDIA-GPU"),
                int(labels.get("nvidia.com/gpu.memory", "16384")),
            )

    def dcgm(self) -> str:
        with self.lock:
            rates = {key: flow.rps for key, flow in self.book.flows.items()}
            return dcgm_exposition(
                list(self.gpu_nodes.values()), list(self.holders.values()), rates
            )


def poll_cluster(simulator: Simulator, kubeconfig: Path, period: float = 1.0) -> None:
    """Follow Deployments, GPU pods and gpu nodes by listing them every ``period``.

    One thread and one client: several API clients in threads of one process crashed the
    interpreter (seen in the benchmark), so the simulator does not run concurrent watches.
    """
    while True:
        try:
            client = connect(kubeconfig)
            while True:
                started = time.monotonic()
                for deployment in client.list(Deployment, namespace="*"):
                    simulator.on_deployment(deployment)
                pods = list(client.list(Pod, namespace="*"))
                live = {(p.metadata.namespace, p.metadata.name) for p in pods if p.metadata}
                with simulator.lock:
                    for key in [k for k in simulator.holders if k not in live]:
                        del simulator.holders[key]
                for pod in pods:
                    simulator.on_pod(pod)
                nodes = list(client.list(Node))
                names = {n.metadata.name for n in nodes if n.metadata}
                with simulator.lock:
                    for name in [n for n in simulator.gpu_nodes if n not in names]:
                        del simulator.gpu_nodes[name]
                for node in nodes:
                    simulator.on_node(node)
                # On a big cluster a round takes long: rest three times as long, so the
                # simulator never takes more than a quarter of a core from the platform.
                time.sleep(max(period, 3 * (time.monotonic() - started)))
        except Exception as error:  # noqa: BLE001 - the simulator must outlive API restarts
            log.warning("cluster poll failed (%s); retrying", error)
            time.sleep(1.0)


def handler_for(simulator: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def _send(self, code: int, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, code: int, message: str) -> None:
            """Answer and close: the unread body must not be parsed as the next request."""
            self.close_connection = True
            self._send(code, json.dumps({"error": f"bad request: {message}"}))

        def do_GET(self) -> None:
            if self.path == "/metrics":
                with simulator.lock:
                    text = simulator.book.exposition(time.monotonic())
                self._send(200, text + simulator.dcgm(), "text/plain; version=0.0.4")
            elif self.path == "/traffic":
                with simulator.lock:
                    simulator.book.advance(time.monotonic())
                    rows = simulator.book.table()
                self._send(200, json.dumps(rows))
            elif self.path == "/healthz":
                self._send(200, "ok", "text/plain")
            else:
                self._send(404, json.dumps({"error": f"no such path {self.path}"}))

        def do_PUT(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts == ["traffic"]:
                self._put_many()
                return
            if len(parts) != 3 or parts[0] != "traffic":
                self._send(404, json.dumps({"error": "use PUT /traffic/NAMESPACE/DEPLOYMENT"}))
                return
            try:
                length = body_length(self.headers.get("Content-Length"))
                rps = float(json.loads(self.rfile.read(length) or b"{}")["rps"])
                simulator.set_rate(parts[1], parts[2], rps)
            except BadBody as error:
                self._refuse(error.status, str(error))
                return
            except (KeyError, ValueError, TypeError) as error:
                self._send(400, json.dumps({"error": f"bad request: {error}"}))
                return
            self._send(200, json.dumps({"namespace": parts[1], "deployment": parts[2], "rps": rps}))

        def _put_many(self) -> None:
            """PUT /traffic with [{"namespace", "deployment", "rps"}, ...]: many at once."""
            try:
                length = body_length(self.headers.get("Content-Length"))
                rows = json.loads(self.rfile.read(length) or b"[]")
                rates = [
                    (str(row["namespace"]), str(row["deployment"]), float(row["rps"]))
                    for row in rows
                ]
                simulator.set_rates(rates)
            except BadBody as error:
                self._refuse(error.status, str(error))
                return
            except (KeyError, ValueError, TypeError) as error:
                self._send(400, json.dumps({"error": f"bad request: {error}"}))
                return
            self._send(200, json.dumps({"updated": len(rates)}))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(prog="gpuplane-traffic")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rates", type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    simulator = Simulator(args.rates)
    threading.Thread(target=poll_cluster, args=(simulator, args.kubeconfig), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(simulator))
    log.info("traffic simulator on 127.0.0.1:%d", args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
