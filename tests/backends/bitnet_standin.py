"""A stand-in for bitnet.cpp's ``llama-server`` (its HTTP protocol, canned text).

bitnet.cpp is an optional external binary that CI does not have; this script speaks
the same endpoints (``/health``, ``/tokenize``, streaming ``/completion``) so the
worker's proxy engine is exercised end to end. Tokens are whitespace-separated words;
generation streams ``w0 w1 ...`` slowly enough to be cancelled.
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
    for flag in ("-m", "-c", "-t", "--host", "--port"):
        parser.add_argument(flag)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, int(args.port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
