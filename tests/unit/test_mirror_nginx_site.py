"""The mirror's nginx site, run by a real nginx on this host: which paths reach the backends.

The site file is used as shipped, with only its host paths and ports moved into a temporary
folder. The allowlist maps and the CRAN proxy file are written by mirror-allowlist's own
functions, the PyPI file check is the real mirror-file-check program, and one local HTTP server
stands in for devpi, Verdaccio and CRAN, recording every path that reaches it: a refused
request must never get there.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from blueprints.package_mirror.settings import vm_program

FILES = Path(__file__).resolve().parents[2] / "blueprints" / "package_mirror" / "files"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SIX = "e3b/0c44298fc1c14/six-1.17.0-py2.py3-none-any.whl"
SIX_OLD = "a1b/2c3d4e5f60718/six-1.16.0-py2.py3-none-any.whl"
AGE_DAYS = 7
# What the upstreams say of upload times (PyPI's JSON simple page, the npm registry's document):
# six 1.17.0 and left-pad 1.3.0 are years old, left-pad 1.4.0 came out today.
UPSTREAM_DOCUMENTS = {
    "/pypi-upstream/six/": {"name": "six", "files": [
        {"filename": "six-1.17.0-py2.py3-none-any.whl", "upload-time": "2024-12-04T17:35:23.123456Z"}]},
    "/npm-upstream/left-pad": {"name": "left-pad", "time": {
        "created": "2014-03-15T00:00:00.000Z", "1.3.0": "2018-04-09T01:34:25.966Z",
        "1.4.0": "2099-01-01T00:00:00.000Z"}},
}

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (tests/host-packages.txt)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Backends:
    """devpi (root/trust pages, root/pypi files), Verdaccio and a CRAN upstream in one server."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        backends = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                backends.seen.append(self.path)
                if self.path in UPSTREAM_DOCUMENTS:  # the upstreams' upload times, for the age check
                    body = json.dumps(UPSTREAM_DOCUMENTS[self.path]).encode()
                elif self.path == "/root/trust/+simple/six/":
                    body = f'<a href="../../../root/pypi/+f/{SIX}#sha256=00">six</a>'.encode()
                elif self.path.startswith("/root/trust/+simple/"):
                    self.send_error(404)
                    return
                else:  # devpi serves every cached file, Verdaccio and CRAN whatever they hold
                    body = f"content of {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _site(tmp: Path, ports: dict[str, int]) -> str:
    text = (FILES / "nginx-site.conf").read_text()
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False).stderr
    major, minor = (int(n) for n in re.search(r"nginx/(\d+)\.(\d+)", version).groups())
    if (major, minor) < (1, 25):
        text = text.replace("    http2 on;\n", "")  # the directive is newer than this host's nginx
    for old, new in {
        "listen 443 ssl default_server;": f"listen 127.0.0.1:{ports['nginx']} ssl default_server;",
        "listen [::]:443 ssl default_server;": "",
        "/etc/trust-blueprints/secrets/": f"{tmp}/secrets/",
        "/etc/nginx/trust-mirror/": f"{tmp}/trust-mirror/",
        "/var/cache/nginx/": f"{tmp}/cache/",
        "/var/log/nginx/": f"{tmp}/log/",
        "127.0.0.1:3141": f"127.0.0.1:{ports['backends']}",
        "127.0.0.1:4873": f"127.0.0.1:{ports['backends']}",
        "127.0.0.1:3150": f"127.0.0.1:{ports['checker']}",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def mirror() -> Iterator[tuple[int, Backends, Path]]:
    # Not under pytest's own folder (0700): nginx's workers, unprivileged, must reach the caches.
    with tempfile.TemporaryDirectory(prefix="tb-nginx-") as folder:
        yield from _running_mirror(Path(folder), "curated")


@pytest.fixture(scope="module")
def open_mirror() -> Iterator[tuple[int, Backends, Path]]:
    with tempfile.TemporaryDirectory(prefix="tb-nginx-") as folder:
        yield from _running_mirror(Path(folder), "open")


@pytest.fixture(scope="module")
def aged_mirror() -> Iterator[tuple[int, Backends, Path]]:
    """A curated mirror whose checker applies a minimum release age of AGE_DAYS."""
    with tempfile.TemporaryDirectory(prefix="tb-nginx-") as folder:
        yield from _running_mirror(Path(folder), "curated", AGE_DAYS)


def _running_mirror(tmp: Path, mode: str, age_days: int | None = None) -> Iterator[tuple[int, Backends, Path]]:
    for folder in ("secrets", "trust-mirror", "cache/cran", "cache/pypi-files", "log", "temp"):
        (tmp / folder).mkdir(parents=True)
        # nginx's workers drop to an unprivileged user when the test runs as root.
        (tmp / folder).chmod(0o777)
    tmp.chmod(0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=mirror", "-days", "1", "-keyout", str(tmp / "secrets/tls.key"),
                    "-out", str(tmp / "secrets/tls.crt")], check=True, capture_output=True)
    backends = Backends()
    ports = {"nginx": _free_port(), "checker": _free_port(), "backends": backends.port}
    lists = {"pypi": ["six>=1.17"], "npm": ["left-pad"], "cran": ["tbmirrorok"]}
    for name, text in {
        "pypi-allowed.map": vm_program.nginx_map([vm_program.canonical_pypi("six")], mode),
        "npm-allowed.map": vm_program.nginx_map(lists["npm"], mode),
        "cran-allowed.map": vm_program.nginx_map(lists["cran"], mode),
        "cran-proxy.conf": vm_program.cran_proxy(f"http://127.0.0.1:{backends.port}/cran-upstream", "127.0.0.1"),
    }.items():
        (tmp / "trust-mirror" / name).write_text(text)
    (tmp / "site.conf").write_text(_site(tmp, ports))
    (tmp / "nginx.conf").write_text(f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/log/error.log;
events {{}}
http {{
    client_body_temp_path {tmp}/temp/body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    include {tmp}/site.conf;
}}
""")
    age_options = []
    if age_days is not None:
        upstreams = {"pypi": f"http://127.0.0.1:{backends.port}/pypi-upstream",
                     "npm": f"http://127.0.0.1:{backends.port}/npm-upstream/"}
        (tmp / "settings.json").write_text(json.dumps({"mode": mode, "upstreams": upstreams}))
        (tmp / "minimum-release-age").write_text(f"{age_days}\n")
        age_options = ["--settings", str(tmp / "settings.json"), "--age-file", str(tmp / "minimum-release-age")]
    checker = subprocess.Popen([sys.executable, str(FILES / "mirror-file-check.py"), "--listen",
                                f"127.0.0.1:{ports['checker']}", "--devpi", f"http://127.0.0.1:{backends.port}",
                                *age_options])
    nginx = subprocess.Popen([NGINX, "-p", str(tmp), "-e", str(tmp / "log/error.log"), "-c", str(tmp / "nginx.conf")])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", ports["nginx"]), timeout=1).close()
                socket.create_connection(("127.0.0.1", ports["checker"]), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, (tmp / "log/error.log").read_text()
                time.sleep(0.1)
        yield ports["nginx"], backends, tmp
    finally:
        nginx.terminate()
        checker.terminate()
        nginx.wait(10)
        checker.wait(10)
        backends.server.shutdown()


def _get(mirror, path: str) -> tuple[int, str]:
    """GET the path exactly as written (no client-side normalisation of dot segments)."""
    port = mirror[0]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    return response.status, body


def _logged_refusal(mirror, text: str) -> bool:
    """Whether the refusal log holds ``text``: nginx writes its log line after the answer, so wait a little."""
    log = mirror[2] / "log/mirror-refused.log"
    for _ in range(50):
        if log.exists() and text in log.read_text():
            return True
        time.sleep(0.05)
    return False


def _reached(mirror, fragment: str) -> bool:
    return any(fragment in path for path in mirror[1].seen)


# --- PyPI files ---------------------------------------------------------------------------------

def test_a_file_the_curated_index_offers_is_served(mirror):
    status, body = _get(mirror, f"/pypi/root/pypi/+f/{SIX}")
    assert status == 200, body
    assert body == f"content of /root/pypi/+f/{SIX}"


def test_a_pinned_out_version_is_refused_by_its_file_url_and_never_fetched(mirror):
    status, body = _get(mirror, f"/pypi/root/pypi/+f/{SIX_OLD}")
    assert status == 403
    assert "six-1.16.0-py2.py3-none-any.whl is not offered by the curated index" in body
    assert not _reached(mirror, "six-1.16.0")
    assert _logged_refusal(mirror, "refused pypi-file:")


def test_a_file_of_an_unlisted_project_is_refused(mirror):
    status, _ = _get(mirror, "/pypi/root/pypi/+f/0a1/b2c3d4e5f6071/tabulate-0.9.0-py3-none-any.whl")
    assert status == 403
    assert not _reached(mirror, "tabulate-0.9.0")


def test_devpi_pages_other_than_the_curated_index_stay_inside(mirror):
    for path in ("/pypi/root/pypi/+simple/tabulate/", "/pypi/+api", "/pypi/root/pypi/tabulate/0.9.0"):
        assert _get(mirror, path)[0] == 404, path


# --- CRAN ---------------------------------------------------------------------------------------

def test_an_allowlisted_cran_tarball_and_the_index_are_served(mirror):
    assert _get(mirror, "/cran/src/contrib/tbmirrorok_0.1.0.tar.gz") == (
        200, "content of /cran-upstream/src/contrib/tbmirrorok_0.1.0.tar.gz")
    assert _get(mirror, "/cran/src/contrib/PACKAGES.gz")[0] == 200


def test_an_unlisted_cran_tarball_is_refused(mirror):
    assert _get(mirror, "/cran/src/contrib/tbmirrorno_0.1.0.tar.gz")[0] == 403
    assert _get(mirror, "/cran/src/contrib/Archive/tbmirrorno/tbmirrorno_0.0.9.tar.gz")[0] == 403
    assert not _reached(mirror, "tbmirrorno")


CRAN_TRICKS = [
    "/cran/src/contrib/tbmirrorok_0.1.0.tar.gz/../tbmirrorno_0.1.0.tar.gz",
    "/cran/src/contrib/tbmirrorok_0.1.0.tar.gz/..%2Ftbmirrorno_0.1.0.tar.gz",
    "/cran/src/contrib/%2e%2e/contrib/tbmirrorno_0.1.0.tar.gz",
    "/cran/src/contrib/../../../etc/passwd",
    "/cran/src/contrib/3.5.0/Recommended/tbmirrorno_0.1.0.tar.gz",
    "/cran/src/contrib/Archive/tbmirrorno/",
    "/cran/src/contrib/PACKAGES.html",
    "/cran/bin/windows/contrib/4.4/tbmirrorok_0.1.0.zip",
    "/cran/bin/macosx/big-sur-arm64/contrib/4.4/tbmirrorok_0.1.0.tgz",
]


@pytest.mark.parametrize("path", CRAN_TRICKS)
def test_cran_path_tricks_and_binaries_are_refused_before_the_upstream(mirror, path):
    before = len(mirror[1].seen)
    status, _ = _get(mirror, path)
    assert status in (400, 403, 404), (path, status)
    assert mirror[1].seen[before:] == []


def test_in_open_mode_any_cran_package_is_served_but_nothing_else(open_mirror):
    assert _get(open_mirror, "/cran/src/contrib/tbmirrorno_0.1.0.tar.gz")[0] == 200
    for path in CRAN_TRICKS[3:]:  # the first three normalise to a package tarball, which open mode serves
        before = len(open_mirror[1].seen)
        assert _get(open_mirror, path)[0] in (400, 404), path
        assert open_mirror[1].seen[before:] == [], path


# --- npm ----------------------------------------------------------------------------------------

def test_npm_metadata_and_tarballs_follow_the_allowlist(mirror):
    assert _get(mirror, "/npm/left-pad")[0] == 200
    assert _get(mirror, "/npm/left-pad/-/left-pad-1.3.0.tgz")[0] == 200
    for path in ("/npm/is-odd", "/npm/is-odd/-/is-odd-3.0.1.tgz", "/npm/left-pad/../is-odd/-/is-odd-3.0.1.tgz",
                 "/npm/@evil/pkg/-/pkg-1.0.0.tgz"):
        assert _get(mirror, path)[0] == 403, path
    assert not _reached(mirror, "is-odd") and not _reached(mirror, "@evil")


def test_npm_tarball_paths_verdaccio_also_answers_never_reach_it(mirror):
    for path in ("/npm/left-pad/-/left-pad-1.3.0.tgz/", "/npm/left-pad/-/left-pad/-/left-pad-1.3.0.tgz",
                 "/npm/left-pad/-/@x/left-pad-1.3.0.tgz"):
        before = len(mirror[1].seen)
        assert _get(mirror, path)[0] == 404, path
        assert mirror[1].seen[before:] == [], path


# --- A minimum release age ------------------------------------------------------------------------

def test_with_a_minimum_age_old_releases_are_served(aged_mirror):
    assert _get(aged_mirror, f"/pypi/root/pypi/+f/{SIX}") == (200, f"content of /root/pypi/+f/{SIX}")
    assert _get(aged_mirror, "/npm/left-pad/-/left-pad-1.3.0.tgz") == (
        200, "content of /left-pad/-/left-pad-1.3.0.tgz")
    assert _reached(aged_mirror, "/pypi-upstream/six/") and _reached(aged_mirror, "/npm-upstream/left-pad")


def test_with_a_minimum_age_a_release_younger_than_it_is_refused_and_never_fetched(aged_mirror):
    status, body = _get(aged_mirror, "/npm/left-pad/-/left-pad-1.4.0.tgz")
    assert status == 403
    assert json.loads(body)["error"].startswith("npm tarball refused by the package mirror: left-pad 1.4.0 was "
                                                "published 2099-01-01 00:00 UTC")
    assert f"at least {AGE_DAYS} days old" in body
    assert not _reached(aged_mirror, "left-pad-1.4.0")
    assert _logged_refusal(aged_mirror, "refused npm-file:left-pad 1.4.0")


def test_with_a_minimum_age_a_release_the_upstream_gives_no_time_for_is_refused(aged_mirror):
    status, body = _get(aged_mirror, "/npm/left-pad/-/left-pad-1.5.0.tgz")
    assert status == 403
    assert "does not say when left-pad 1.5.0 was uploaded" in body
    assert not _reached(aged_mirror, "left-pad-1.5.0")
