"""`blueprints allowlist resolve`: each allowlist's dependency closure, against local registry stand-ins.

The stand-ins are real enough for the real clients: a PEP 503 simple index with built wheels for pip,
a registry serving package documents for the npm client, and a CRAN-layout folder with a PACKAGES
index. One test asks the real PyPI, and only runs when it answers.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import logging
import re
import socket
import threading
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main
from tests.conftest import REPO
from validation.allowlist_closure import (
    EcosystemClosure,
    Package,
    closure_warnings,
    missing_needs,
    read_record,
    record_path,
    render_record,
)
from validation.allowlist_resolver import (
    ResolutionError,
    add_to_yaml_lists,
    check_reachable,
    cran_needs,
    parse_packages_index,
    python_target,
    resolve_cran,
    resolve_pypi,
)
from validation.stack_config import load_stack

SHARED = REPO / "stacks" / "shared-services.yaml"

# name -> version -> Requires-Dist lines
WHEELS: dict[str, dict[str, list[str]]] = {
    "alpha": {"1.0": ["beta", "epsilon; extra == 'fast'", "zeta; python_version < '3'"]},
    "beta": {"1.0": [], "2.0": ["gamma>=1"]},
    "gamma": {"1.0": []},
    "epsilon": {"1.0": []},
    "zeta": {"1.0": []},
    "one": {"1.0": ["beta<2"]},
    "two": {"1.0": ["beta>=2"]},
}
# name -> version -> package document fields
NPM_PACKAGES: dict[str, dict[str, dict[str, Any]]] = {
    "lefty": {"1.0.0": {"dependencies": {"righty": "^1.0.0", "@tb/scoped": "1.0.0"},
                        "optionalDependencies": {"lefty-win": "1.0.0", "lefty-linux": "1.0.0"}}},
    "righty": {"1.0.0": {}, "1.2.0": {}},
    "@tb/scoped": {"1.0.0": {}},
    "lefty-win": {"1.0.0": {"os": ["win32"]}},
    "lefty-linux": {"1.0.0": {"os": ["linux"], "cpu": ["x64"]}},
}
# Upload times for the minimum release age: every release is years old but these, out yesterday.
OLD_RELEASE = "2020-01-01T00:00:00.000Z"
FRESH_RELEASES = {("beta", "2.0"), ("righty", "1.2.0")}


def _published(name: str, version: str) -> str:
    if (name, version) in FRESH_RELEASES:
        return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return OLD_RELEASE


CRAN_INDEX = """\
Package: tidyish
Version: 2.0.0
Depends: R (>= 3.5), methods
Imports: dplyrish (>= 1.0), MASS,
        glueish
LinkingTo: cpp11ish
NeedsCompilation: yes

Package: dplyrish
Version: 1.1.4
Imports: rlangish, bioconly

Package: rlangish
Version: 1.1.0

Package: glueish
Version: 1.7.0

Package: cpp11ish
Version: 0.5.0

Package: lonely
Version: 0.1.0
"""


def _wheel(name: str, version: str, requires: list[str]) -> bytes:
    info = f"{name}-{version}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Requires-Dist: {line}\n" for line in requires),
                        "Provides-Extra: fast\n" if any("extra ==" in line for line in requires) else ""])
    files = {f"{name}/__init__.py": "", f"{info}/METADATA": metadata,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _serve_folder(folder: Path) -> contextlib.AbstractContextManager[str]:
    class Handler(_Quiet):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

    return _serve(Handler)


@pytest.fixture(scope="module")
def pypi_index(tmp_path_factory) -> Iterator[str]:
    """A PEP 503 simple index of real wheels built from WHEELS."""
    root = tmp_path_factory.mktemp("pypi")
    (root / "files").mkdir()
    for name, versions in WHEELS.items():
        links = []
        for version, requires in versions.items():
            filename = f"{name}-{version}-py3-none-any.whl"
            data = _wheel(name, version, requires)
            (root / "files" / filename).write_bytes(data)
            links.append(f'<a href="../../files/{filename}#sha256={hashlib.sha256(data).hexdigest()}">{filename}</a>')
        (root / "simple" / name).mkdir(parents=True)
        (root / "simple" / name / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    with _serve_folder(root) as url:
        yield f"{url}/simple"


@pytest.fixture(scope="module")
def pypi_json_index(tmp_path_factory) -> Iterator[str]:
    """A PEP 691 JSON simple index of the same wheels, with PEP 700 upload times (what PyPI serves)."""
    root = tmp_path_factory.mktemp("pypi-json")
    pages: dict[str, bytes] = {}
    for name, versions in WHEELS.items():
        files = []
        for version, requires in versions.items():
            filename = f"{name}-{version}-py3-none-any.whl"
            data = _wheel(name, version, requires)
            (root / filename).write_bytes(data)
            files.append({"filename": filename, "url": f"../../files/{filename}",
                          "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                          "upload-time": _published(name, version)})
        pages[f"/simple/{name}/"] = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files,
                                               "versions": list(versions)}).encode()

    class Handler(_Quiet):
        def do_GET(self) -> None:
            if self.path in pages:
                body, kind = pages[self.path], "application/vnd.pypi.simple.v1+json"
            elif self.path.startswith("/files/") and (root / self.path[len("/files/"):]).is_file():
                body, kind = (root / self.path[len("/files/"):]).read_bytes(), "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

    with _serve(Handler) as url:
        yield f"{url}/simple"


@pytest.fixture(scope="module")
def npm_registry() -> Iterator[str]:
    """A registry answering package documents (all npm --package-lock-only reads) from NPM_PACKAGES."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            name = urllib.parse.unquote(self.path.strip("/"))
            if name not in NPM_PACKAGES:
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b'{"error": "Not found"}')
                return
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            versions = {version: {"name": name, "version": version, **fields,
                                  "dist": {"tarball": f"{base}/{name}/-/{name.split('/')[-1]}-{version}.tgz",
                                           "integrity": "sha512-" + hashlib.sha512(name.encode()).digest().hex()}}
                        for version, fields in NPM_PACKAGES[name].items()}
            times = {version: _published(name, version) for version in versions}
            body = json.dumps({"name": name, "dist-tags": {"latest": max(versions)}, "versions": versions,
                               "time": {"created": OLD_RELEASE, **times}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

    with _serve(Handler) as url:
        yield url


@pytest.fixture(scope="module")
def cran_repository(tmp_path_factory) -> Iterator[str]:
    """A CRAN-layout folder with only an uncompressed PACKAGES (so PACKAGES.gz answers 404)."""
    root = tmp_path_factory.mktemp("cran")
    (root / "src" / "contrib").mkdir(parents=True)
    (root / "src" / "contrib" / "PACKAGES").write_text(CRAN_INDEX)
    with _serve_folder(root) as url:
        yield url


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stack(folder: Path, pypi: list[str], npm: list[str], cran: list[str], upstreams: dict[str, str],
           allowlists_file: str | None = None) -> Path:
    """The shared-services stack with these allowlists and upstreams, keeping its comments."""
    text = SHARED.read_text()
    block = ("    # the trust's curated lists\n    allowlists:\n"
             f"      pypi: [{', '.join(pypi)}]  # analysts' Python\n"
             f"      npm: [{', '.join(npm)}]\n      cran: [{', '.join(cran)}]\n")
    if allowlists_file:
        block += f"    allowlists_file: {allowlists_file}\n"
    block += "    upstreams:\n" + "".join(f"      {name}: {url}\n" for name, url in upstreams.items())
    text, count = re.subn(r"    allowlists:\n(      .*\n)+", block, text)
    assert count == 1
    stack = folder / "trust.yaml"
    stack.write_text(text)
    return stack


@pytest.fixture
def registries(pypi_index, npm_registry, cran_repository) -> dict[str, str]:
    return {"pypi": pypi_index, "npm": npm_registry, "cran": cran_repository}


def _needs(record: dict[str, EcosystemClosure], ecosystem: str, entry: str) -> list[str]:
    return [str(package) for package in record[ecosystem].needs[entry]]


# --- resolving -------------------------------------------------------------------------------------

def test_resolve_shows_each_ecosystems_missing_dependencies_and_writes_nothing(tmp_path, registries, capsys):
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyish"], registries)
    before = stack.read_text()
    assert main(["allowlist", "resolve", str(stack)]) == 0
    captured = capsys.readouterr()
    assert "  + beta 2.0  (for alpha)" in captured.out
    assert "  + gamma 1.0  (for alpha)" in captured.out
    assert "epsilon" not in captured.out and "zeta" not in captured.out  # an extra, a false marker
    assert "  + righty 1.2.0  (for lefty)" in captured.out
    assert "  + lefty-linux 1.0.0  (for lefty)" in captured.out
    assert "lefty-win" not in captured.out  # built for Windows only
    assert "  + dplyrish 1.1.4  (for tidyish)" in captured.out
    assert "MASS" not in captured.out and "methods" not in captured.out  # recommended and base: r-base has them
    assert "note: cran: bioconly is needed but not in the repository's index" in captured.out
    assert "Nothing written: run again with --write" in captured.out
    assert "pypi: pip resolving 1 entry together" in captured.err  # progress lines
    assert stack.read_text() == before
    record = read_record(record_path(stack))
    assert _needs(record, "pypi", "alpha") == ["beta 2.0", "gamma 1.0"]
    assert _needs(record, "npm", "lefty") == ["@tb/scoped 1.0.0", "lefty-linux 1.0.0", "righty 1.2.0"]
    assert _needs(record, "cran", "tidyish") == ["cpp11ish 0.5.0", "dplyrish 1.1.4", "glueish 1.7.0",
                                                 "rlangish 1.1.0"]


def test_the_allowlists_version_specifiers_are_honoured(tmp_path, registries, capsys):
    stack = _stack(tmp_path, ["alpha", "'beta<2'"], [], [], registries)
    assert main(["allowlist", "resolve", str(stack), "--ecosystem", "pypi", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "pypi: complete: 2 entries, 1 dependency, all listed" in out  # beta 1.0 needs no gamma
    assert not record_path(stack).exists()


def test_with_a_minimum_release_age_only_versions_old_enough_are_chosen(tmp_path, registries, pypi_json_index,
                                                                        capsys):
    upstreams = {**registries, "pypi": pypi_json_index}
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyish"], upstreams)
    assert main(["allowlist", "resolve", str(stack), "--no-record"]) == 0
    fresh = capsys.readouterr().out
    assert "  + beta 2.0  (for alpha)" in fresh and "  + righty 1.2.0  (for lefty)" in fresh  # out yesterday
    stack.write_text(stack.read_text().replace("    # the trust's curated lists\n",
                                               "    minimum_release_age_days: 7\n    # the trust's curated lists\n"))
    assert main(["allowlist", "resolve", str(stack)]) == 0
    out = capsys.readouterr().out
    assert "  + beta 1.0  (for alpha)" in out and "gamma" not in out  # beta 1.0 needs no gamma
    assert "  + righty 1.0.0  (for lefty)" in out
    cutoff = re.search(r"only versions published before (\S+) \(minimum release age\)", out).group(1)
    published = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - published) - timedelta(days=7)) < timedelta(minutes=10)
    assert "note: cran: the minimum release age is not applied" in out
    record = read_record(record_path(stack))
    assert _needs(record, "pypi", "alpha") == ["beta 1.0"]
    assert "minimum release age" in record["npm"].assumed


def test_entries_that_conflict_together_are_resolved_one_by_one(registries):
    target = python_target()
    closure = resolve_pypi(["one", "two"], registries["pypi"], target)
    assert [str(package) for package in closure.needs["one"]] == ["beta 1.0"]
    assert [str(package) for package in closure.needs["two"]] == ["beta 2.0", "gamma 1.0"]


def test_write_adds_the_closure_keeping_comments_and_layout_and_validate_is_then_quiet(
        tmp_path, registries, capsys, caplog):
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyish"], registries)
    before = stack.read_text()
    assert main(["allowlist", "resolve", str(stack)]) == 0  # records the needs, changes nothing
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        load_stack(stack)  # what `blueprints validate` reads the stack with
    assert "'alpha' needs beta, gamma, not on the allowlist" in caplog.text
    assert "'lefty' needs @tb/scoped, lefty-linux, righty" in caplog.text
    caplog.clear()
    assert main(["allowlist", "resolve", str(stack), "--write"]) == 0
    assert "Added 9 entries to" in capsys.readouterr().out
    after = stack.read_text()
    assert "      pypi: [alpha, beta, gamma]  # analysts' Python\n" in after
    assert '      npm: [lefty, "@tb/scoped", lefty-linux, righty]\n' in after
    assert "      cran: [tidyish, cpp11ish, dplyrish, glueish, rlangish]\n" in after
    assert "    # the trust's curated lists\n" in after
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert len(changed) == 3  # only the three list lines
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_stack(stack)
    assert "needs" not in caplog.text


def test_write_goes_to_the_allowlists_file_when_the_stack_uses_one(tmp_path, registries, capsys):
    stack = _stack(tmp_path, [], [], ["lonely"], registries, allowlists_file="more.yaml")
    extra = tmp_path / "more.yaml"
    extra.write_text("# kept by the data team\npypi:\n  - alpha   # the model code\n")
    before = stack.read_text()
    assert main(["allowlist", "resolve", str(stack), "--ecosystem", "pypi", "--write"]) == 0
    assert f"Added 2 entries to {extra}" in capsys.readouterr().out
    assert stack.read_text() == before
    assert extra.read_text() == ("# kept by the data team\npypi:\n  - alpha   # the model code\n"
                                 "  - beta\n  - gamma\n")
    assert load_stack(stack)["roles"]["package_mirror"]["allowlists"]["pypi"] == ["alpha", "beta", "gamma"]


def test_an_unknown_project_fails_with_exit_1_naming_it(tmp_path, registries, capsys):
    stack = _stack(tmp_path, ["nosuchproject"], [], [], registries)
    assert main(["allowlist", "resolve", str(stack)]) == 1
    out = capsys.readouterr().out
    assert "pypi: NOT RESOLVED: pip could not resolve the PyPI allowlist" in out
    assert "nosuchproject" in out


@pytest.mark.parametrize(("ecosystem", "registry"), [
    ("pypi", "the PyPI index"), ("npm", "the npm registry"), ("cran", "the CRAN repository")])
def test_an_unreachable_registry_is_named_with_exit_1(tmp_path, registries, capsys, ecosystem, registry):
    dead = f"http://127.0.0.1:{_closed_port()}"
    upstreams = {**registries, ecosystem: dead + ("/simple" if ecosystem == "pypi" else "")}
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyish"], upstreams)
    assert main(["allowlist", "resolve", str(stack), "--ecosystem", ecosystem]) == 1
    out = capsys.readouterr().out
    assert f"{ecosystem}: NOT RESOLVED: {registry} at {dead}" in out
    assert "is not reachable" in out and "resolving needs" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("argv", "expected"), [
    (["allowlist", "resolve"], "the following arguments are required: stack_file"),
    (["allowlist", "resolve", "stacks/shared-services.yaml", "--ecosystem", "gems"], "invalid choice: 'gems'"),
    (["allowlist", "frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err


def test_a_missing_or_bad_stack_file_exits_2_naming_it(tmp_path, capsys):
    assert main(["allowlist", "resolve", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    text, count = re.subn(r"npm: \[typescript\b", "npm: ['Bad Name'", SHARED.read_text())
    assert count == 1
    bad.write_text(text)
    assert main(["allowlist", "resolve", str(bad)]) == 2
    assert "roles.package_mirror.allowlists.npm[0]: must be an npm package name" in capsys.readouterr().err


def test_a_stack_without_a_mirror_exits_2(tmp_path, capsys):
    text = SHARED.read_text()
    stack = tmp_path / "nomirror.yaml"
    stack.write_text(text[:text.index("  package_mirror:")] + text[text.index("  git_server:"):])
    assert main(["allowlist", "resolve", str(stack)]) == 2
    assert "roles.package_mirror is not set" in capsys.readouterr().err


def test_a_python_that_does_not_run_exits_2(tmp_path, capsys):
    assert main(["allowlist", "resolve", str(SHARED), "--python", str(tmp_path / "python9"),
                 "--no-record"]) == 2
    assert "does not run as a Python interpreter" in capsys.readouterr().err


# --- the pieces ------------------------------------------------------------------------------------

def test_packages_index_records_join_continuation_lines_and_skip_base_and_recommended():
    index = parse_packages_index(CRAN_INDEX)
    assert index["tidyish"]["Imports"] == "dplyrish (>= 1.0), MASS, glueish"
    needs, notes = cran_needs(index, ["tidyish", "lonely"])
    assert [package.name for package in needs["tidyish"]] == ["cpp11ish", "dplyrish", "glueish", "rlangish"]
    assert needs["lonely"] == ()
    assert notes == ("cran: bioconly is needed but not in the repository's index (another repository?)",)


def test_flow_lists_grow_in_place_and_wrap_under_their_first_item():
    text = "a:\n  allow:\n    pypi: [numpy, pandas]   # keep me\n    npm: []\n"
    names = [f"package-number-{number}" for number in range(5)]
    out = add_to_yaml_lists(text, ["a", "allow"], {"pypi": names, "npm": ["@s/x", "yes"]})
    assert out.splitlines()[2] == ("    pypi: [numpy, pandas, package-number-0, package-number-1, package-number-2, "
                                   "package-number-3,")  # 97 characters and the closing bracket: 98 <= 100
    assert out.splitlines()[3] == "           package-number-4]   # keep me"
    assert '    npm: ["@s/x", "yes"]' in out
    assert yaml.safe_load(out)["a"]["allow"]["npm"] == ["@s/x", "yes"]


def test_block_lists_null_values_and_missing_top_level_keys():
    text = "pypi:\n  - numpy   # first\n  - pandas\n# trailing comment\nnpm:\n"
    out = add_to_yaml_lists(text, [], {"pypi": ["six"], "npm": ["left-pad"], "cran": ["glue"]})
    assert out == ("pypi:\n  - numpy   # first\n  - pandas\n  - six\n# trailing comment\nnpm: [left-pad]\n"
                   "cran: [glue]\n")


def test_missing_needs_compares_pypi_names_under_pep_503():
    closure = EcosystemClosure("pypi", "", {"pandas": (Package("python_dateutil", "2.9"), Package("tzdata", "1"))})
    assert missing_needs({"pypi": ["pandas", "Python-Dateutil"]}, {"pypi": closure}) == {"pypi": {"pandas": ["tzdata"]}}
    assert missing_needs({"pypi": ["pandas>=2"]}, {"pypi": closure}) == {}  # no record for that text


def test_an_unreadable_record_is_a_warning_not_a_failure(tmp_path, caplog):
    stack = tmp_path / "trust.yaml"
    stack.write_text(SHARED.read_text())
    record_path(stack).parent.mkdir()
    record_path(stack).write_text("pypi: [not, a, mapping]\n")
    with caplog.at_level(logging.WARNING):
        load_stack(stack)
    assert "the dependency record cannot be read" in caplog.text


def test_a_record_reads_back_as_written():
    closures = {"npm": EcosystemClosure("npm", "linux", {"lefty": (Package("@tb/scoped", "1.0.0"),)})}
    text = render_record("trust.yaml", closures, "2026-12-02")
    assert text.startswith("# What each allowlist entry of trust.yaml pulls in")
    assert yaml.safe_load(text)["npm"] == {"assumed": "linux", "needs": {"lefty": ["@tb/scoped 1.0.0"]}}


# --- the shared-services stack stays whole ---------------------------------------------------------

def test_shared_services_lists_everything_its_entries_need():
    record = read_record(record_path(SHARED))
    for entry in ("pandas", "seaborn", "statsmodels"):
        assert entry in record["pypi"].needs, f"{entry} has no record: run blueprints allowlist resolve"
        assert record["pypi"].needs[entry], entry
    # tidyverse's needs come from the recorded CRAN-format index (CRAN does not answer here).
    assert "dplyr" in {package.name for package in record["cran"].needs["tidyverse"]}
    assert closure_warnings(load_stack(SHARED), SHARED) == []


def _pypi_answers() -> bool:
    try:
        check_reachable("PyPI", "https://pypi.org/simple/")
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _pypi_answers(), reason="PyPI is not reachable from here")
def test_pip_install_pandas_seaborn_statsmodels_needs_only_what_shared_services_allows():
    """Against the real PyPI: what pip would install for the three sits wholly on the allowlist."""
    closure = resolve_pypi(["pandas", "seaborn", "statsmodels"], "https://pypi.org/simple", python_target())
    allowlist = load_stack(SHARED)["roles"]["package_mirror"]["allowlists"]["pypi"]
    assert missing_needs({"pypi": ["pandas", "seaborn", "statsmodels", *allowlist]}, {"pypi": closure}) == {}
    assert "numpy" in {package.name for package in closure.needs["pandas"]}


def test_validate_warns_of_a_recorded_need_but_exits_0(tmp_path, caplog, capsys):
    stack = tmp_path / "trust.yaml"
    stack.write_text(SHARED.read_text())
    record_path(stack).parent.mkdir()
    record_path(stack).write_text("pypi:\n  assumed: test\n  needs:\n    pandas: [numpy 2.0, tzdata 2026.1, "
                                  "nosuchdep 1.0]\n")
    with caplog.at_level(logging.WARNING):
        assert main(["validate", str(stack)]) == 0
    assert "valid" in capsys.readouterr().out
    warnings = [record.getMessage() for record in caplog.records if "nosuchdep" in record.getMessage()]
    assert warnings == [f"{stack}: warning: roles.package_mirror.allowlists.pypi: 'pandas' needs nosuchdep, "
                        "not on the allowlist (installing it through the mirror fails)"]


def test_a_compressed_packages_index_is_read_first(tmp_path):
    (tmp_path / "src" / "contrib").mkdir(parents=True)
    (tmp_path / "src" / "contrib" / "PACKAGES.gz").write_bytes(gzip.compress(CRAN_INDEX.encode()))
    with _serve_folder(tmp_path) as url:
        closure = resolve_cran(["dplyrish"], url)
        with pytest.raises(ResolutionError, match="the CRAN index has no package 'Tidyish'"):
            resolve_cran(["Tidyish"], url)
    assert [str(package) for package in closure.needs["dplyrish"]] == ["rlangish 1.1.0"]


# --- CRAN against a recorded index in CRAN's format ------------------------------------------------

# A CRAN-layout folder whose src/contrib/PACKAGES holds 98 real records in the form CRAN's index has
# (tools::write_PACKAGES fields, continuation lines as written): the DESCRIPTION files of Debian 12's
# r-cran packages for shared-services' CRAN entries and everything their Depends, Imports and
# LinkingTo reach. Debian has no odbc package, so odbc is not in it; CRAN's own versions are newer.
RECORDED_CRAN = Path(__file__).resolve().parent / "recorded" / "cran"
RECORDED_INDEX = parse_packages_index((RECORDED_CRAN / "src" / "contrib" / "PACKAGES").read_text())


def test_the_recorded_index_gives_tidyverse_its_imports_and_what_they_reach_but_not_r_itself():
    needs, notes = cran_needs(RECORDED_INDEX, ["tidyverse", "readr", "dplyr"])
    assert notes == ()
    tidyverse = {package.name for package in needs["tidyverse"]}
    assert {"dplyr", "ggplot2", "readr", "tibble", "rlang", "vctrs", "cli"} <= tidyverse  # Imports and beyond
    assert "vroom" in tidyverse  # readr imports it: a dependency of a dependency
    assert not tidyverse & {"MASS", "mgcv", "methods", "utils", "R"}  # ggplot2 imports MASS and mgcv
    # readr's LinkingTo (cpp11, tzdb) is followed; its Suggests (testthat, waldo) are not.
    readr = {package.name for package in needs["readr"]}
    assert {"cpp11", "tzdb"} <= readr and not readr & {"testthat", "waldo", "covr"}
    assert "lifecycle 1.0.3" in [str(package) for package in needs["readr"]]  # "lifecycle (>=\n 0.2.0)"
    assert [str(package) for package in needs["dplyr"]][:3] == ["R6 2.5.1", "cli 3.6.0", "fansi 1.0.4"]


def test_resolve_against_a_cran_layout_folder_given_on_the_command_line(tmp_path, registries, capsys):
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyverse", "DBI"], registries)
    argv = ["allowlist", "resolve", str(stack), "--ecosystem", "cran", "--upstream", f"cran={RECORDED_CRAN.as_uri()}"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"cran: resolving against {RECORDED_CRAN.as_uri()}, not the stack's upstream" in captured.err
    assert "cran: 2 entries need 97 dependencies; 96 not listed, to add:" in captured.out  # DBI is listed
    assert "  + ggplot2 3.4.1  (for tidyverse)" in captured.out
    record = read_record(record_path(stack))
    assert record["cran"].needs["DBI"] == ()
    assert "pypi" not in record and len(record["cran"].needs["tidyverse"]) == 97


def test_an_entry_the_cran_index_lacks_is_named_with_exit_1(tmp_path, registries, capsys):
    stack = _stack(tmp_path, ["alpha"], ["lefty"], ["tidyverse", "odbc"], registries)
    assert main(["allowlist", "resolve", str(stack), "--ecosystem", "cran",
                 "--upstream", f"cran={RECORDED_CRAN.as_uri()}"]) == 1
    out = capsys.readouterr().out
    assert "cran: NOT RESOLVED: the CRAN index has no package 'odbc'" in out
    # The entry it knows is still shown and recorded: one unknown name does not hide tidyverse's needs.
    assert "cran: 1 entry need 97 dependencies; 97 not listed, to add:" in out
    assert set(read_record(record_path(stack))["cran"].needs) == {"tidyverse"}


@pytest.mark.parametrize(("value", "expected"), [
    ("cran", "must be ECOSYSTEM=URL with ECOSYSTEM one of pypi, npm, cran"),
    ("conda=https://x.example", "must be ECOSYSTEM=URL"),
    ("cran=ftp://x.example", "the cran URL 'ftp://x.example' must be an http(s) URL, or file:///PATH"),
    ("pypi=file:///srv/pypi", "the pypi URL 'file:///srv/pypi' must be an http(s) URL"),
])
def test_a_bad_upstream_argument_exits_2_naming_it(value, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["allowlist", "resolve", str(SHARED), "--upstream", value])
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err
