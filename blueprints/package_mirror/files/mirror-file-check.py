#!/usr/bin/python3
"""mirror-file-check: may this PyPI file be downloaded? nginx asks before serving /pypi/root/pypi/+f/.

devpi serves any file it has ever cached from its root/pypi mirror, whatever the allowlist says,
so a pinned-out version stays downloadable by its file URL. nginx therefore asks this program
first (auth_request), and it answers 204 only when the curated index root/trust links to exactly
that file today: the allowlist, its version specifiers and the mode are devpi-constrained's, read
from the same page pip reads, so the file path can never be looser than the index.

  mirror-file-check [--listen 127.0.0.1:3150] [--devpi http://127.0.0.1:3141]

It takes the file path from the X-Original-URI header nginx sends. Answers: 204 allowed, 403
refused (header X-Mirror-Reason says why), 502 devpi did not answer (nginx refuses then too).
Installed by the package mirror's cloud-init; it needs only Python's standard library.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILES_PREFIX = "/pypi/root/pypi/+f/"
# devpi stores a file under the first 3 and the next 13 hex digits of its hash, then its name.
FILE_PATH = re.compile(r"^(?P<a>[0-9a-f]{3})/(?P<b>[0-9a-f]{13})/(?P<filename>[A-Za-z0-9][A-Za-z0-9._+!-]*)$")
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
CURATED_INDEX = "/root/trust/+simple/"
# A page is read again after this long: an allowlist change reaches file downloads within a minute.
PAGE_SECONDS = 60
# An sdist name may hold hyphens; each place a version could start gives one candidate, and no
# more than this many are looked up for one request.
MAX_CANDIDATES = 4


class FileRefusedError(Exception):
    """The file may not be served; the message says why, for the analyst and the refusal log."""


def canonical(name: str) -> str:
    """PEP 503 normal form, as in the index's URLs."""
    return re.sub(r"[-_.]+", "-", name).lower()


def file_path(uri: str) -> tuple[str, str]:
    """(path below +f/, file name) of a request for a devpi mirror file, or FileRefusedError."""
    if not uri.startswith(FILES_PREFIX):
        raise FileRefusedError("not a PyPI file path")
    rest = uri[len(FILES_PREFIX):]
    match = FILE_PATH.match(rest)
    if not match:
        raise FileRefusedError("not a file path of the mirror's PyPI cache")
    filename = match.group("filename")
    if ".." in filename or not filename.lower().endswith(DIST_SUFFIXES):
        raise FileRefusedError(f"{filename!r} is not a Python distribution file")
    return rest, filename


def project_candidates(filename: str) -> list[str]:
    """The projects a distribution file name can belong to, most likely first.

    A wheel's name has no hyphen (PEP 427); an sdist's may, so every hyphen followed by a digit
    could begin its version.
    """
    if filename.endswith(".whl"):
        return [canonical(filename.split("-", 1)[0])]
    stem = filename
    for suffix in DIST_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    candidates = []
    for match in re.finditer(r"-(?=[0-9])", stem):
        name = canonical(stem[: match.start()])
        if name and name not in candidates:
            candidates.append(name)
    return candidates[-MAX_CANDIDATES:][::-1]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for key, value in attrs if key == "href" and value)


def linked_files(page_url: str, html: str) -> set[str]:
    """The paths below /root/pypi/+f/ that an index page links to."""
    parser = _Links()
    parser.feed(html)
    paths = set()
    for href in parser.hrefs:
        path = urllib.parse.urlsplit(urllib.parse.urljoin(page_url, href)).path
        marker = path.find("/root/pypi/+f/")
        if marker >= 0:
            paths.add(urllib.parse.unquote(path[marker + len("/root/pypi/+f/"):]))
    return paths


class Checker:
    """Decides from devpi's curated index; pages are kept PAGE_SECONDS."""

    def __init__(self, devpi: str, fetch=None, clock=time.monotonic) -> None:
        self.devpi = devpi.rstrip("/")
        self.fetch = fetch or self._fetch
        self.clock = clock
        self.pages: dict[str, tuple[float, set[str]]] = {}

    @staticmethod
    def _fetch(url: str) -> str | None:
        """The page's HTML, or None when the index does not serve the project (not allowed)."""
        request = urllib.request.Request(url, headers={"Accept": "text/html"})  # noqa: S310 (devpi on loopback)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as error:
            if error.code in (403, 404):
                return None
            raise

    def files_of(self, project: str) -> set[str]:
        url = f"{self.devpi}{CURATED_INDEX}{project}/"
        kept = self.pages.get(project)
        if kept and self.clock() - kept[0] < PAGE_SECONDS:
            return kept[1]
        html = self.fetch(url)
        files = linked_files(url, html) if html is not None else set()
        self.pages[project] = (self.clock(), files)
        return files

    def check(self, uri: str) -> str:
        """The project the file belongs to, if the curated index links to it; FileRefusedError otherwise."""
        rest, filename = file_path(uri)
        candidates = project_candidates(filename)
        for project in candidates:
            if rest in self.files_of(project):
                return project
        named = ", ".join(candidates) or "no project"
        raise FileRefusedError(f"{filename} is not offered by the curated index ({named}): "
                      "its project or this version is not on the trust's allowlist")


def handler_for(checker: Checker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            uri = self.headers.get("X-Original-URI", "")
            try:
                project = checker.check(uri)
            except FileRefusedError as refusal:
                self._answer(403, str(refusal))
                return
            except (OSError, ValueError) as error:
                self._answer(502, f"the curated index did not answer: {error}")
                return
            self._answer(204, f"offered by the curated index ({project})")

        def _answer(self, status: int, reason: str) -> None:
            self.send_response(status)
            # Header values are one line of printable ASCII.
            self.send_header("X-Mirror-Reason", re.sub(r"[^ -~]", "?", reason)[:400])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # nginx logs every request and every refusal already

    return Handler


def main(argv: list[str]) -> int:
    options = {"--listen": "127.0.0.1:3150", "--devpi": "http://127.0.0.1:3141"}
    if len(argv) % 2 or any(key not in options for key in argv[::2]):
        print(__doc__.strip().split("\n\n")[2], file=sys.stderr)
        return 2
    options.update(zip(argv[::2], argv[1::2], strict=True))
    host, _, port = options["--listen"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        print(f"mirror-file-check: --listen {options['--listen']!r}: must be HOST:PORT, "
              "such as 127.0.0.1:3150", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((host, int(port)), handler_for(Checker(options["--devpi"])))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
