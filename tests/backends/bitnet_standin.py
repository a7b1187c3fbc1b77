"""A stand-in for bitnet.cpp's ``llama-server`` (its HTTP protocol, canned text).

bitnet.cpp is an optional external binary that CI does not have; this script speaks
the same endpoints (``/health``, ``/tokenize``, streaming ``/completion``) so the
worker's proxy engine is exercised end to end. Like ``llama-server --api-key``, every
endpoint but ``/health`` answers 401 without ``Authorization: Bearer <key>``. Tokens
are whitespace-separated words; generation streams ``w0 w1 ...`` slowly enough to be
cancelled.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._json({"status": "ok"})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":  # type: ignore[attr-defined]
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.path == "/tokenize":
            self._json({"tokens": list(range(len(request["content"].split())))})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        limit = request["n_predict"]
        try:
            for i in range(limit):
                event = {"content": f"w{i} ", "stop": False}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.01)
            final = {
                "content": "",
                "stop": True,
                "tokens_predicted": limit,
                "stopped_limit": True,
                "grammar": "grammar" in request,
            }
            self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
        except BrokenPipeError:
            pass  # the client cancelled


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("-m", "-c", "-t", "--host", "--port", "--api-key"):
        parser.add_argument(flag)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, int(args.port)), Handler)
    server.api_key = args.api_key  # type: ignore[attr-defined]
    server.serve_forever()


if __name__ == "__main__":
    main()
