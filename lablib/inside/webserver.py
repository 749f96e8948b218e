"""example.com, the outside world's web server: its reply tells the client which address
it saw the request come from, so NAT can be seen from the far end.

Run by the lab host's agent inside the `web` namespace with a socket already listening
(`--fd N`), so the world is ready before this process has even started. It runs as a
plain script (`python -I -S webserver.py`), importing nothing of lablib or site-packages:
every lab host has one, so it keeps small (about half the memory of `python -m`).
"""
from __future__ import annotations

import argparse
import socket
import sys

if __name__ == "__main__":
    # http.client (which http.server imports) loads ssl when it can; plain HTTP needs none.
    sys.modules.setdefault("ssl", None)

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    server_version = "example.com"
    sys_version = ""

    def do_GET(self) -> None:
        client, port = self.client_address[:2]
        if self.path.rstrip("/") == "/ip":
            body = f"{client}\n"
        else:
            body = (f"Hello from example.com ({self.server.server_address[0]}).\n"
                    f"You came from {client} port {port}.\n")
        raw = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    do_HEAD = do_GET

    def log_message(self, format: str, *args) -> None:
        # One line per request, showing the client address as the server saw it.
        sys.stderr.write(f"{self.client_address[0]} port {self.client_address[1]}: {format % args}\n")


def main() -> None:
    with open("/proc/self/comm", "w") as comm:   # the name ps, top and ss show
        comm.write("example.com")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="an inherited listening socket")
    args = parser.parse_args()
    listener = socket.socket(fileno=args.fd)
    server = ThreadingHTTPServer(listener.getsockname(), Handler, bind_and_activate=False)
    server.socket = listener
    server.daemon_threads = True
    sys.stderr.write(f"example.com serving HTTP on {listener.getsockname()[0]} port {listener.getsockname()[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
