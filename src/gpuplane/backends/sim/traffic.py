"""The traffic simulator process: serves /metrics for Prometheus and /traffic to control
rates, and follows Deployments' ready replicas through a watch.

Run by the sim backend: ``python -m gpuplane.backends.sim.traffic --kubeconfig K --port P``.
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

from gpuplane.backends.sim.traffic_book import TrafficBook
from gpuplane.kube import connect

log = logging.getLogger("gpuplane.traffic")


class Simulator:
    def __init__(self, rates_file: Path | None) -> None:
        self.book = TrafficBook()
        self.lock = threading.Lock()
        self.rates_file = rates_file
        if rates_file is not None and rates_file.is_file():
            for row in json.loads(rates_file.read_text()):
                self.book.set_rate(
                    (row["namespace"], row["deployment"]), float(row["rps"]), time.monotonic()
                )

    def set_rate(self, namespace: str, deployment: str, rps: float) -> None:
        with self.lock:
            self.book.set_rate((namespace, deployment), rps, time.monotonic())
            rows = [
                {k: row[k] for k in ("namespace", "deployment", "rps")} for row in self.book.table()
            ]
        if self.rates_file is not None:
            tmp = self.rates_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows))
            tmp.replace(self.rates_file)

    def watch_deployments(self, kubeconfig: Path) -> None:
        """Follow readyReplicas of every Deployment, reconnecting when the watch ends."""
        while True:
            try:
                client = connect(kubeconfig)
                for _, deployment in client.watch(Deployment, namespace="*"):
                    meta, status = deployment.metadata, deployment.status
                    if meta is None or meta.name is None or meta.namespace is None:
                        continue
                    ready = bool(status and (status.readyReplicas or 0) > 0)
                    with self.lock:
                        self.book.set_ready((meta.namespace, meta.name), ready, time.monotonic())
            except Exception as error:  # noqa: BLE001 - the watch must outlive API restarts
                log.warning("deployment watch ended (%s); retrying", error)
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

        def do_GET(self) -> None:
            if self.path == "/metrics":
                with simulator.lock:
                    text = simulator.book.exposition(time.monotonic())
                self._send(200, text, "text/plain; version=0.0.4")
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
            if len(parts) != 3 or parts[0] != "traffic":
                self._send(404, json.dumps({"error": "use PUT /traffic/NAMESPACE/DEPLOYMENT"}))
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                rps = float(json.loads(self.rfile.read(length) or b"{}")["rps"])
                simulator.set_rate(parts[1], parts[2], rps)
            except (KeyError, ValueError, TypeError) as error:
                self._send(400, json.dumps({"error": f"bad request: {error}"}))
                return
            self._send(200, json.dumps({"namespace": parts[1], "deployment": parts[2], "rps": rps}))

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
    threading.Thread(
        target=simulator.watch_deployments, args=(args.kubeconfig,), daemon=True
    ).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(simulator))
    log.info("traffic simulator on 127.0.0.1:%d", args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
