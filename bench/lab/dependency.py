"""The shop's outside dependency (a recommendations service): a local HTTP server the lab
controls, healthy by default, and on demand slow and failing (1 s, then a 503), as a provider
in trouble is."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Dependency:
    def __init__(self, port: int) -> None:
        self.failing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if outer.failing.is_set():
                    time.sleep(1.0)
                    self._answer(503, {"error": "overloaded"})
                else:
                    time.sleep(0.01)
                    self._answer(200, {"products": [1, 2, 3]})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_) -> None:  # the lab's output is the score, not access logs
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
