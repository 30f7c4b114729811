"""What mirror-file-check adds to each PyPI file and npm tarball the mirror serves, with and without a
minimum release age.

The real program runs on loopback; one local server stands in for devpi's curated page and for the
upstreams' JSON documents (PEP 700 upload times, npm's time map). Each figure is the median wall
time of one check as nginx asks it (an HTTP GET with X-Original-URI), over --requests requests:
the first request of each kind is shown apart (it reads the upstream), the rest are answered from
what the checker keeps. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/mirror_file_check.py [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROGRAM = Path(__file__).resolve().parent.parent / "blueprints" / "package_mirror" / "files" / "mirror-file-check.py"
SIX = "e3b/0c44298fc1c14/six-1.17.0-py2.py3-none-any.whl"
DOCUMENTS = {
    "/root/trust/+simple/six/": f'<a href="../../../root/pypi/+f/{SIX}#sha256=00">six</a>',
    "/pypi/six/": json.dumps({"files": [{"filename": SIX.rsplit("/", 1)[1], "upload-time": "2024-12-04T17:35:26Z"}]}),
    "/npm/left-pad": json.dumps({"time": {"1.3.0": "2018-04-09T01:34:25.966Z"}}),
}


def _upstream() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = DOCUMENTS.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ask(port: int, uri: str) -> tuple[float, int]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/", headers={"X-Original-URI": uri})
    status = connection.getresponse().status
    connection.close()
    return (time.perf_counter() - started) * 1000, status


def measure(folder: Path, upstream: int, age_days: int | None, requests: int) -> None:
    port = _free_port()
    options = []
    if age_days is not None:
        (folder / "settings.json").write_text(json.dumps({"upstreams": {
            "pypi": f"http://127.0.0.1:{upstream}/pypi", "npm": f"http://127.0.0.1:{upstream}/npm"}}))
        (folder / "age").write_text(f"{age_days}\n")
        options = ["--settings", str(folder / "settings.json"), "--age-file", str(folder / "age")]
    checker = subprocess.Popen([sys.executable, str(PROGRAM), "--listen", f"127.0.0.1:{port}",
                                "--devpi", f"http://127.0.0.1:{upstream}", *options])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        label = "no minimum age" if age_days is None else f"minimum age {age_days} days"
        for kind, uri in (("PyPI file", f"/pypi/root/pypi/+f/{SIX}"),
                          ("npm tarball", "/npm/left-pad/-/left-pad-1.3.0.tgz")):
            first, status = _ask(port, uri)
            rest = [_ask(port, uri)[0] for _ in range(requests)]
            print(f"{label:<22} {kind:<12} answer {status}: first {first:6.2f} ms, then median "
                  f"{statistics.median(rest):5.2f} ms (p95 {sorted(rest)[int(len(rest) * 0.95)]:5.2f} ms)")
    finally:
        checker.terminate()
        checker.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    server = _upstream()
    with tempfile.TemporaryDirectory() as folder:
        for age in (None, 7):
            measure(Path(folder), server.server_address[1], age, args.requests)
    server.shutdown()


if __name__ == "__main__":
    main()
