"""Inside the sandbox: TCP request/response latency, as netperf's TCP_RR measures it.

    python3 -m lablib.inside.roundtrip serve PORT          answer every byte with a byte
    python3 -m lablib.inside.roundtrip ask ADDRESS PORT N  N round trips; prints JSON (µs)

One connection, one byte each way, TCP_NODELAY: the time is the path's round trip plus
a few microseconds of Python on each end, the same for every path measured.
"""
from __future__ import annotations

import json
import socket
import statistics
import sys
import time


def serve(port: int) -> None:
    listener = socket.create_server(("0.0.0.0", port), reuse_port=False)
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with connection:
            while data := connection.recv(1):
                connection.sendall(data)


def ask(address: str, port: int, count: int) -> dict:
    with socket.create_connection((address, port), timeout=5) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(count):
            start = time.perf_counter_ns()
            connection.sendall(b"x")
            if not connection.recv(1):
                raise SystemExit("the server closed the connection")
            times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return {"count": count, "median_us": statistics.median(times), "p90_us": times[int(0.9 * (count - 1))]}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "ask":
        print(json.dumps(ask(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
