"""A lab power switch for the node containers, driven by the stock ``fence_docker`` agent of fence-agents.

It answers the part of the Docker Engine API that fence_docker uses (container status, kill, start, restart,
list) over HTTPS with client certificates, and carries each request out with ``podman kill``/``podman start``
of the node container on this host: a fenced node really loses power (every process of it, nested PostgreSQL
containers included, dies at once) and boots again. Only the containers it was made for can be switched, and
only by a client holding the certificate its CA signed (the nodes get it; nothing else on the network can
fence). It listens on the host's address in the cluster network: a node whose network is cut cannot reach
it, like a node that lost its management network too.

Every request is logged with its time (``events``), so a test can tell which node was fenced and when."""
from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

_PATH = re.compile(r"^/v[0-9.]+/containers/(?P<name>[A-Za-z0-9_.-]+)/(?P<op>json|kill|start|restart)$")
_LIST = re.compile(r"^/v[0-9.]+/containers/json(\?.*)?$")


def make_certificates(directory: str, address: str) -> Dict[str, str]:
    """A CA, a server certificate for ``address`` and a client certificate (EC P-256), in ``directory``."""
    paths = {name: os.path.join(directory, name) for name in
             ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}
    ssl_cmd = ["openssl"]

    def run(*args: str) -> None:
        subprocess.run([*ssl_cmd, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=pgtwin lab power switch CA", "-keyout", paths["ca.key"], "-out", paths["ca.pem"])
    for role, subject, extension in (("server", "/CN=" + address, "subjectAltName=IP:" + address),
                                     ("client", "/CN=pgtwin lab fencing", "extendedKeyUsage=clientAuth")):
        csr = os.path.join(directory, role + ".csr")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
            "-keyout", paths[role + ".key"], "-out", csr)
        ext = os.path.join(directory, role + ".ext")
        with open(ext, "w", encoding="utf-8") as handle:
            handle.write(extension + "\n")
        run("x509", "-req", "-in", csr, "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"], "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", paths[role + ".pem"])
    return paths


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that goes away mid-request (a node powered off while its fencer asked) is not an error of
        the switch: no traceback on the test's output."""


class PowerSwitch:
    """``PowerSwitch(address, containers, directory).start()`` (``port``: a free one unless given);
    ``stop()`` when done."""

    def __init__(self, address: str, containers: List[str], directory: str, port: int = 0) -> None:
        self.address = address
        self.containers = set(containers)
        self.certs = make_certificates(directory, address)
        self.events: List[Tuple[float, str, str]] = []  # (time.monotonic(), operation, container)
        self.lock = threading.Lock()
        self.server = _Server((address, port), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs["server.pem"], self.certs["server.key"])
        context.load_verify_locations(self.certs["ca.pem"])
        context.verify_mode = ssl.CERT_REQUIRED
        # The handshake runs in the request's thread (on its first read, with the handler's timeout), not in
        # accept(): a client cut off mid-handshake must not stop the switch for everyone.
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "PowerSwitch":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fenced(self, since: float = 0.0) -> List[Tuple[str, str]]:
        """(operation, container) of every power change since ``since``."""
        with self.lock:
            return [(op, name) for at, op, name in self.events if at >= since and op != "json"]

    # ---- the API ---------------------------------------------------------------------------------------
    def _running(self, name: str) -> Optional[bool]:
        """Whether the node container runs; None when podman cannot say (the request then fails: a node is
        never reported off because its state could not be read)."""
        try:
            proc = subprocess.run(["podman", "inspect", "-f", "{{.State.Running}}", name], capture_output=True,
                                  text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return None
        state = proc.stdout.strip()
        return {"true": True, "false": False}.get(state) if proc.returncode == 0 else None

    def _power(self, op: str, name: str) -> bool:
        """Carry out the operation; True once the node is in the state asked for (a kill of a node that died
        meanwhile is fine), False otherwise (the agent gets an error and tries again)."""
        try:
            if op in ("kill", "restart"):
                subprocess.run(["podman", "kill", name], capture_output=True, timeout=60, check=False)
                subprocess.run(["podman", "wait", name], capture_output=True, timeout=60, check=False)
                if self._running(name) is not False:
                    return False
            if op in ("start", "restart"):
                subprocess.run(["podman", "start", name], capture_output=True, timeout=120, check=False)
                return self._running(name) is True
        except subprocess.TimeoutExpired:
            return False
        return True

    def _handler(self) -> type:
        switch = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 15  # seconds for the handshake and each read

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                pass  # the events list is the log

            def _reply(self, code: int, body: object = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                if method == "GET" and _LIST.match(self.path):
                    states = {name: switch._running(name) for name in sorted(switch.containers)}
                    if None in states.values():
                        self._reply(500, {"message": "podman could not say whether the nodes run"})
                        return
                    self._reply(200, [{"Id": name, "Names": ["/" + name], "Status": "Up" if up else "Exited"}
                                      for name, up in states.items()])
                    return
                match = _PATH.match(self.path.split("?")[0])
                if not match or match["name"] not in switch.containers or (
                        (method == "GET") != (match["op"] == "json")):
                    self._reply(404, {"message": "no such container or operation"})
                    return
                name, op = match["name"], match["op"]
                with switch.lock:
                    switch.events.append((time.monotonic(), op, name))
                if op == "json":
                    running = switch._running(name)
                    if running is None:
                        self._reply(500, {"message": "podman could not say whether %s runs" % name})
                    else:
                        self._reply(200, {"Id": name, "Name": "/" + name, "State": {"Running": running}})
                    return
                if switch._power(op, name):
                    self._reply(204)
                else:
                    self._reply(500, {"message": "%s of %s did not take effect" % (op, name)})

            def do_GET(self):  # pylint: disable=invalid-name
                self._route("GET")

            def do_POST(self):  # pylint: disable=invalid-name
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self._route("POST")

        return Handler
