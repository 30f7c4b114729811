#!/usr/bin/python3
"""mirror-file-check: may this PyPI file or npm tarball be downloaded? nginx asks before serving one.

devpi serves any file it has ever cached from its root/pypi mirror, whatever the allowlist says,
so a pinned-out version stays downloadable by its file URL. nginx therefore asks this program
first (auth_request), and it answers 204 only when the curated index root/trust links to exactly
that file today: the allowlist, its version specifiers and the mode are devpi-constrained's, read
from the same page pip reads, so the file path can never be looser than the index.

With a minimum release age (roles.package_mirror.minimum_release_age_days, in the file named by
--age-file), a PyPI file or an npm tarball is served only once its upstream has held it that many
days: the upload time is the upstream's own (PyPI's JSON simple API, PEP 700 "upload-time" per
file; the npm registry's "time" map per version), kept in memory, and a file whose upload time
cannot be learnt is refused. npm's allowlist itself is nginx's map; this program adds the age.

  mirror-file-check [--listen 127.0.0.1:3150] [--devpi http://127.0.0.1:3141]
                    [--settings /etc/trust-blueprints/mirror/settings.json]
                    [--age-file /etc/trust-blueprints/mirror/minimum-release-age]

It takes the file path from the X-Original-URI header nginx sends. Answers: 204 allowed, 403
refused (header X-Mirror-Reason says why), 502 devpi did not answer (nginx refuses then too).
The two files are read again when they change (upstreams from --settings, the age in days from
--age-file); without --age-file there is no age check; an age file that cannot be read refuses
every file. Installed by the package mirror's cloud-init; it needs only Python's standard library.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILES_PREFIX = "/pypi/root/pypi/+f/"
# devpi stores a file under the first 3 and the next 13 hex digits of its hash, then its name.
FILE_PATH = re.compile(r"^(?P<a>[0-9a-f]{3})/(?P<b>[0-9a-f]{13})/(?P<filename>[A-Za-z0-9][A-Za-z0-9._+!-]*)$")
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
CURATED_INDEX = "/root/trust/+simple/"
# A page is read again after this long: an allowlist change reaches file downloads within a minute.
PAGE_SECONDS = 60
# Upload times of a project are read again after this long, or after this long if a file is not
# among them (it may be newer than the last read). An upload time itself never changes.
TIMES_SECONDS = 600
TIMES_RETRY_SECONDS = 60
NPM_PREFIX = "/npm/"
# An npm tarball as Verdaccio links it: /npm/<name>/-/<name without scope>-<version>.tgz
NPM_TARBALL = re.compile(
    r"^/npm/(?P<name>(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)/-/(?P<file>[A-Za-z0-9][A-Za-z0-9._+-]*\.tgz)$")
AGE_SETTING = "roles.package_mirror.minimum_release_age_days"
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


def npm_tarball(uri: str) -> tuple[str, str]:
    """(package name, version) of a request for an npm tarball, or FileRefusedError."""
    match = NPM_TARBALL.match(uri)
    if not match or ".." in uri:
        raise FileRefusedError("not an npm tarball path")
    name, filename = match.group("name"), match.group("file")
    stem = name.rsplit("/", 1)[-1] + "-"
    if not filename.startswith(stem) or len(filename) <= len(stem) + len(".tgz"):
        raise FileRefusedError(f"{filename!r} is not a tarball of {name}")
    return name, filename[len(stem):-len(".tgz")]


def parse_time(text: object) -> datetime | None:
    """An ISO 8601 time from an upstream, as an aware datetime (None when it is not one)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pypi_upload_times(document: object) -> dict[str, datetime]:
    """File name -> upload time, from a PEP 691 JSON project page (PEP 700's "upload-time")."""
    times = {}
    files = document.get("files") if isinstance(document, dict) else None
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
            moment = parse_time(entry.get("upload-time"))
            if moment is not None:
                times[entry["filename"]] = moment
    return times


def npm_publish_times(document: object) -> dict[str, datetime]:
    """Version -> publish time, from an npm registry package document's "time" map."""
    times = {}
    recorded = document.get("time") if isinstance(document, dict) else None
    for version, text in (recorded if isinstance(recorded, dict) else {}).items():
        moment = parse_time(text)
        if version not in ("created", "modified") and moment is not None:
            times[version] = moment
    return times


def age_days(text: str) -> int:
    """The age file's number of days: one whole number, with comment lines (#) around it; empty is 0."""
    words = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    words = [word for word in words if word]
    if len(words) > 1:
        raise ValueError(f"more than one value: {words}")
    return int(words[0]) if words else 0


class ReleaseAge:
    """The minimum age and the upstreams, read from their files when these change."""

    def __init__(self, age_file: str | None, settings_file: str | None) -> None:
        self.age_file = age_file
        self.settings_file = settings_file
        self.kept: dict[str, tuple[float, object]] = {}

    def _read(self, path: str, parse):
        stamp = os.stat(path).st_mtime_ns
        kept = self.kept.get(path)
        if kept and kept[0] == stamp:
            return kept[1]
        with open(path, encoding="utf-8") as stream:
            value = parse(stream.read())
        self.kept[path] = (stamp, value)
        return value

    def days(self) -> int:
        """The minimum age in days (0: off); FileRefusedError when the setting cannot be read."""
        if self.age_file is None:
            return 0
        try:
            days = self._read(self.age_file, age_days)
        except (OSError, ValueError) as error:
            raise FileRefusedError(f"the minimum release age cannot be read from {self.age_file} ({error}), "
                                   "so no file is served") from None
        if days < 0:
            raise FileRefusedError(f"the minimum release age in {self.age_file} is {days}: must be 0 or more")
        return days

    def upstream(self, ecosystem: str) -> str:
        try:
            settings = self._read(self.settings_file or "", json.loads)
            url = settings["upstreams"][ecosystem]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise FileRefusedError(f"the {ecosystem} upstream cannot be read from {self.settings_file} "
                                   f"({error}), so the upload time cannot be learnt") from None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise FileRefusedError(f"the {ecosystem} upstream {url!r} is not an http(s) URL")
        return url.rstrip("/")


class Checker:
    """Decides from devpi's curated index (pages kept PAGE_SECONDS) and, with a minimum release age,
    from the upstream's upload times (kept TIMES_SECONDS)."""

    def __init__(self, devpi: str, fetch=None, clock=time.monotonic, age: ReleaseAge | None = None,
                 fetch_json=None, now=lambda: datetime.now(UTC)) -> None:
        self.devpi = devpi.rstrip("/")
        self.fetch = fetch or self._fetch
        self.clock = clock
        self.pages: dict[str, tuple[float, set[str]]] = {}
        self.age = age or ReleaseAge(None, None)
        self.fetch_json = fetch_json or self._fetch_json
        self.now = now
        self.times: dict[str, tuple[float, dict[str, datetime]]] = {}

    @staticmethod
    def _fetch_json(url: str, accept: str) -> object:
        """The upstream's JSON document at ``url`` (an http(s) upstream from the mirror's settings)."""
        request = urllib.request.Request(url, headers={"Accept": accept,  # noqa: S310
                                                       "User-Agent": "trust-blueprints mirror-file-check"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read().decode("utf-8"))

    def _upload_time(self, key: str, url: str, accept: str, reader, wanted: str, what: str) -> datetime:
        kept = self.times.get(key)
        age = self.clock() - kept[0] if kept else None
        if kept is None or age >= TIMES_SECONDS or (wanted not in kept[1] and age >= TIMES_RETRY_SECONDS):
            try:
                times = reader(self.fetch_json(url, accept))
            except (OSError, ValueError, http.client.HTTPException) as error:
                raise FileRefusedError(f"the upload time of {what} cannot be learnt from {url} ({error}); "
                                       f"refused while {AGE_SETTING} is set") from None
            kept = (self.clock(), times)
            self.times[key] = kept
        if wanted not in kept[1]:
            raise FileRefusedError(f"{url} does not say when {what} was uploaded; refused while {AGE_SETTING} is set")
        return kept[1][wanted]

    def _old_enough(self, uploaded: datetime, what: str, days: int) -> None:
        age = self.now() - uploaded
        if age.total_seconds() < days * 86400:
            raise FileRefusedError(
                f"{what} was published {uploaded.strftime('%Y-%m-%d %H:%M')} UTC, {age.days} days ago; the "
                f"mirror serves releases at least {days} days old ({AGE_SETTING}); pin an older version")

    def check_npm(self, uri: str) -> str:
        """The package an npm tarball belongs to, if it is old enough; FileRefusedError otherwise."""
        name, version = npm_tarball(uri)
        days = self.age.days()
        if days:
            url = f"{self.age.upstream('npm')}/{name.replace('/', '%2f')}"
            uploaded = self._upload_time(f"npm:{name}", url, "application/json", npm_publish_times, version,
                                         f"{name} {version}")
            self._old_enough(uploaded, f"{name} {version}", days)
        return name

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
        """The project the file belongs to, if the curated index links to it (and it is old enough
        when a minimum age is set); FileRefusedError otherwise."""
        if uri.startswith(NPM_PREFIX):
            return self.check_npm(uri)
        rest, filename = file_path(uri)
        candidates = project_candidates(filename)
        for project in candidates:
            if rest in self.files_of(project):
                days = self.age.days()
                if days:
                    url = f"{self.age.upstream('pypi')}/{project}/"
                    uploaded = self._upload_time(f"pypi:{project}", url, "application/vnd.pypi.simple.v1+json",
                                                 pypi_upload_times, filename, filename)
                    self._old_enough(uploaded, filename, days)
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
            # Header values are one line of printable ASCII; nginx puts the reason in a JSON body
            # for npm, so no double quote or backslash either.
            self.send_header("X-Mirror-Reason", re.sub(r'[^ -~]|["\\]', "?", reason)[:400])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # nginx logs every request and every refusal already

    return Handler


def main(argv: list[str]) -> int:
    options = {"--listen": "127.0.0.1:3150", "--devpi": "http://127.0.0.1:3141", "--settings": None,
               "--age-file": None}
    if len(argv) % 2 or any(key not in options for key in argv[::2]):
        print(__doc__.strip().split("\n\n")[3], file=sys.stderr)
        return 2
    options.update(zip(argv[::2], argv[1::2], strict=True))
    host, _, port = options["--listen"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        print(f"mirror-file-check: --listen {options['--listen']!r}: must be HOST:PORT, "
              "such as 127.0.0.1:3150", file=sys.stderr)
        return 2
    age = ReleaseAge(options["--age-file"], options["--settings"])
    server = ThreadingHTTPServer((host, int(port)), handler_for(Checker(options["--devpi"], age=age)))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
