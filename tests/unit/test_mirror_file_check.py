"""mirror-file-check, the program nginx asks before serving a PyPI file or an npm tarball: offline,
against index pages shaped like devpi's (links relative to the page, hashes in the fragment) and,
for the minimum release age, PyPI's recorded JSON simple page and an npm registry document."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[2] / "blueprints" / "package_mirror" / "files" / "mirror-file-check.py"
SIX = "e3b/0c44298fc1c14/six-1.17.0-py2.py3-none-any.whl"
SIX_OLD = "a1b/2c3d4e5f60718/six-1.16.0-py2.py3-none-any.whl"


def _program():
    spec = importlib.util.spec_from_file_location("mirror_file_check_program", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


program = _program()


def _page(*paths: str) -> str:
    links = "".join(f'<a href="../../../root/pypi/+f/{path}#sha256=00">{path.rsplit("/", 1)[1]}</a><br/>'
                    for path in paths)
    return f"<!DOCTYPE html><html><body>{links}</body></html>"


class Index:
    """The curated index as the checker sees it: project -> page, counting fetches."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.fetched: list[str] = []

    def __call__(self, url: str) -> str | None:
        self.fetched.append(url)
        project = url.rstrip("/").rsplit("/", 1)[1]
        return self.pages.get(project)


def _checker(pages: dict[str, str], clock=lambda: 0.0):
    index = Index(pages)
    return program.Checker("http://127.0.0.1:3141", fetch=index, clock=clock), index


def test_a_file_the_curated_index_links_to_is_allowed():
    checker, index = _checker({"six": _page(SIX)})
    assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
    assert index.fetched == ["http://127.0.0.1:3141/root/trust/+simple/six/"]


def test_a_pinned_out_version_of_an_allowed_project_is_refused():
    # devpi still holds six 1.16.0 from before the pin; the curated page no longer links to it.
    checker, _ = _checker({"six": _page(SIX)})
    with pytest.raises(program.FileRefusedError, match=r"six-1\.16\.0-py2\.py3-none-any\.whl is not offered"):
        checker.check(f"/pypi/root/pypi/+f/{SIX_OLD}")


def test_a_file_of_a_project_off_the_allowlist_is_refused():
    checker, _ = _checker({"six": _page(SIX)})
    with pytest.raises(program.FileRefusedError, match=r"\(tabulate\)"):
        checker.check("/pypi/root/pypi/+f/0a1/b2c3d4e5f6071/tabulate-0.9.0-py3-none-any.whl")


def test_the_same_file_name_under_another_hash_is_refused():
    checker, _ = _checker({"six": _page(SIX)})
    with pytest.raises(program.FileRefusedError):
        checker.check("/pypi/root/pypi/+f/fff/0c44298fc1c14/six-1.17.0-py2.py3-none-any.whl")


@pytest.mark.parametrize("uri", [
    "/pypi/root/pypi/+f/e3b/0c44298fc1c14/../../../+simple/six/",
    "/pypi/root/pypi/+f/e3b/0c44298fc1c14/sub/six-1.17.0-py2.py3-none-any.whl",
    "/pypi/root/pypi/+f/E3B/0c44298fc1c14/six-1.17.0-py2.py3-none-any.whl",
    "/pypi/root/pypi/+f/e3b/0c44298fc1c14/six-1.17.0.exe",
    "/pypi/root/trust/+simple/six/",
    "",
])
def test_anything_but_a_distribution_file_path_is_refused_without_asking_devpi(uri):
    checker, index = _checker({"six": _page(SIX)})
    with pytest.raises(program.FileRefusedError):
        checker.check(uri)
    assert index.fetched == []


def test_an_sdist_whose_name_has_hyphens_is_found_under_its_project():
    path = "5d2/9e1f0a3b4c5d6/python-dateutil-2.9.0.tar.gz"
    assert program.project_candidates("python-dateutil-2.9.0.tar.gz") == ["python-dateutil"]
    checker, _ = _checker({"python-dateutil": _page(path)})
    assert checker.check(f"/pypi/root/pypi/+f/{path}") == "python-dateutil"


def test_a_wheel_name_is_read_as_pep_503_would_normalise_it():
    assert program.project_candidates("Zope.Interface-8.7-cp313-cp313-manylinux1_x86_64.whl") == ["zope-interface"]


def test_candidates_per_request_are_bounded():
    name = "x-" + "-".join(["1a"] * 20) + "-1.0.tar.gz"
    assert len(program.project_candidates(name)) == program.MAX_CANDIDATES


def test_pages_are_read_again_after_a_minute_so_an_allowlist_change_reaches_files():
    now = [0.0]
    checker, index = _checker({"six": _page(SIX)}, clock=lambda: now[0])
    checker.check(f"/pypi/root/pypi/+f/{SIX}")
    checker.check(f"/pypi/root/pypi/+f/{SIX}")
    assert len(index.fetched) == 1
    index.pages["six"] = _page()  # six taken off the allowlist
    now[0] = program.PAGE_SECONDS + 1
    with pytest.raises(program.FileRefusedError):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


def test_links_resolve_against_the_page_whether_relative_or_absolute():
    page = ('<a href="https://mirror.example/pypi/root/pypi/+f/abc/def0123456789/x-1.0-py3-none-any.whl">x</a>'
            '<a href="../../../root/pypi/+f/abc/def0123456789/x-1.0.tar.gz#sha256=1">x</a>'
            '<a href="/elsewhere/y-1.0.tar.gz">y</a>')
    assert program.linked_files("http://127.0.0.1:3141/root/trust/+simple/x/", page) == {
        "abc/def0123456789/x-1.0-py3-none-any.whl", "abc/def0123456789/x-1.0.tar.gz"}


@pytest.mark.parametrize("argv", [["--listen"], ["--port", "1"], ["--listen", "localhost"],
                                  ["--listen", "127.0.0.1:70000"]])
def test_bad_arguments_exit_2_with_a_message(argv, capsys):
    assert program.main(argv) == 2
    assert "--listen" in capsys.readouterr().err


# --- A minimum release age -------------------------------------------------------------------------

RECORDED = Path(__file__).resolve().parent / "recorded"
# PyPI's JSON simple page for six (PEP 691 with PEP 700 upload times), recorded 2026-12-02 and cut to
# two releases: six 1.17.0's wheel was uploaded 2024-12-04T17:35:26Z.
SIX_PAGE = json.loads((RECORDED / "pypi-simple-six.json").read_text())
SIX_UPLOADED = datetime(2024, 12, 4, 17, 35, 26, tzinfo=UTC)
# An npm registry package document as the registry shapes it: versions and the "time" map.
LEFT_PAD = {"name": "left-pad", "dist-tags": {"latest": "1.4.0"},
            "versions": {"1.3.0": {"version": "1.3.0"}, "1.4.0": {"version": "1.4.0"}},
            "time": {"created": "2014-03-15T00:00:00.000Z", "modified": "2026-12-01T09:00:00.000Z",
                     "1.3.0": "2018-04-09T01:34:25.966Z", "1.4.0": "2026-12-01T09:00:00.000Z"}}


class Upstreams:
    """PyPI's and npm's JSON documents by URL, counting fetches; a missing one is as if unreachable."""

    def __init__(self, documents: dict[str, object]) -> None:
        self.documents = documents
        self.fetched: list[tuple[str, str]] = []

    def __call__(self, url: str, accept: str) -> object:
        self.fetched.append((url, accept))
        if url not in self.documents:
            raise OSError(f"no answer from {url}")
        return self.documents[url]


def _aged_checker(tmp_path, days: str, now: datetime, documents=None, clock=lambda: 0.0):
    (tmp_path / "settings.json").write_text(json.dumps(
        {"upstreams": {"pypi": "https://pypi.org/simple", "npm": "https://registry.npmjs.org/"}}))
    (tmp_path / "minimum-release-age").write_text(days)
    upstreams = Upstreams({"https://pypi.org/simple/six/": SIX_PAGE, "https://registry.npmjs.org/left-pad": LEFT_PAD}
                          if documents is None else documents)
    age = program.ReleaseAge(str(tmp_path / "minimum-release-age"), str(tmp_path / "settings.json"))
    checker = program.Checker("http://127.0.0.1:3141", fetch=Index({"six": _page(SIX)}), clock=clock, age=age,
                              fetch_json=upstreams, now=lambda: now)
    return checker, upstreams


def test_a_file_older_than_the_minimum_age_is_allowed_by_its_upstream_upload_time(tmp_path):
    checker, upstreams = _aged_checker(tmp_path, "7\n", SIX_UPLOADED + timedelta(days=7, seconds=1))
    assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
    assert upstreams.fetched == [("https://pypi.org/simple/six/", "application/vnd.pypi.simple.v1+json")]


def test_a_file_younger_than_the_minimum_age_is_refused_naming_the_setting(tmp_path):
    checker, _ = _aged_checker(tmp_path, "7", SIX_UPLOADED + timedelta(days=6, hours=23))
    with pytest.raises(program.FileRefusedError, match=r"six-1\.17\.0-py2\.py3-none-any\.whl was published "
                       r"2024-12-04 17:35 UTC, 6 days ago; the mirror serves releases at least 7 days old "
                       r"\(roles\.package_mirror\.minimum_release_age_days\)"):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


def test_an_age_of_zero_asks_no_upstream(tmp_path):
    checker, upstreams = _aged_checker(tmp_path, "0", SIX_UPLOADED)
    assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
    assert checker.check("/npm/left-pad/-/left-pad-1.4.0.tgz") == "left-pad"
    assert upstreams.fetched == []


def test_the_age_is_still_checked_after_the_allowlist_so_an_unlisted_file_is_refused_first(tmp_path):
    checker, upstreams = _aged_checker(tmp_path, "7", SIX_UPLOADED + timedelta(days=30))
    with pytest.raises(program.FileRefusedError, match="not offered by the curated index"):
        checker.check(f"/pypi/root/pypi/+f/{SIX_OLD}")
    assert upstreams.fetched == []


def test_npm_tarballs_are_judged_by_the_registrys_time_map(tmp_path):
    checker, upstreams = _aged_checker(tmp_path, "7", datetime(2026, 12, 2, 17, 0, tzinfo=UTC))
    assert checker.check("/npm/left-pad/-/left-pad-1.3.0.tgz") == "left-pad"
    with pytest.raises(program.FileRefusedError, match=r"left-pad 1\.4\.0 was published 2026-12-01 09:00 UTC, "
                       "1 days ago"):
        checker.check("/npm/left-pad/-/left-pad-1.4.0.tgz")
    assert upstreams.fetched == [("https://registry.npmjs.org/left-pad", "application/json")]  # kept


def test_a_scoped_npm_package_is_asked_of_the_registry_by_its_encoded_name(tmp_path):
    document = {"time": {"7.0.0": "2020-01-01T00:00:00Z"}}
    checker, upstreams = _aged_checker(tmp_path, "7", datetime(2026, 12, 2, tzinfo=UTC),
                                       {"https://registry.npmjs.org/@types%2fnode": document})
    assert checker.check("/npm/@types/node/-/node-7.0.0.tgz") == "@types/node"
    assert upstreams.fetched[0][0] == "https://registry.npmjs.org/@types%2fnode"


@pytest.mark.parametrize("documents, reason", [
    ({}, "cannot be learnt from https://pypi.org/simple/six/"),
    ({"https://pypi.org/simple/six/": {"files": [{"filename": "six-1.17.0-py2.py3-none-any.whl"}]}},
     "does not say when six-1.17.0-py2.py3-none-any.whl was uploaded"),
    ({"https://pypi.org/simple/six/": {"files": [{"filename": "six-1.17.0-py2.py3-none-any.whl",
                                                  "upload-time": "yesterday"}]}}, "does not say when"),
    ({"https://pypi.org/simple/six/": ["not", "a", "page"]}, "does not say when"),
])
def test_when_the_upload_time_cannot_be_learnt_the_file_is_refused(tmp_path, documents, reason):
    checker, _ = _aged_checker(tmp_path, "7", datetime(2026, 12, 2, tzinfo=UTC), documents)
    with pytest.raises(program.FileRefusedError, match=re.escape(reason)):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


def test_the_age_file_as_the_vm_settings_write_it_is_read_past_its_comment(tmp_path):
    checker, _ = _aged_checker(tmp_path, "# roles.package_mirror.minimum_release_age_days (0: off)\n7\n",
                               SIX_UPLOADED + timedelta(days=2))
    with pytest.raises(program.FileRefusedError, match="at least 7 days old"):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


@pytest.mark.parametrize("text", ["seven", "-1", "", "7\n8\n"])
def test_an_age_file_that_is_not_a_day_count_refuses_everything(tmp_path, text):
    checker, _ = _aged_checker(tmp_path, text, datetime(2026, 12, 2, tzinfo=UTC))
    if text == "":  # an empty file is no age, as the settings program writes "0" for none
        assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
        return
    with pytest.raises(program.FileRefusedError, match="minimum release age"):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


def test_a_changed_age_file_is_read_again_without_a_restart(tmp_path):
    checker, _ = _aged_checker(tmp_path, "0", SIX_UPLOADED + timedelta(days=3))
    assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
    age_file = tmp_path / "minimum-release-age"
    age_file.write_text("14")
    os.utime(age_file, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a later mtime, whatever the clock
    with pytest.raises(program.FileRefusedError, match="at least 14 days old"):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")


def test_a_file_newer_than_the_kept_times_makes_the_checker_ask_again_after_a_minute(tmp_path):
    now = [0.0]
    page = {"files": []}
    checker, upstreams = _aged_checker(tmp_path, "7", SIX_UPLOADED + timedelta(days=30),
                                       {"https://pypi.org/simple/six/": page}, clock=lambda: now[0])
    with pytest.raises(program.FileRefusedError):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")
    page["files"] = SIX_PAGE["files"]
    with pytest.raises(program.FileRefusedError):
        checker.check(f"/pypi/root/pypi/+f/{SIX}")  # within the minute: the kept times are used
    now[0] = program.TIMES_RETRY_SECONDS
    assert checker.check(f"/pypi/root/pypi/+f/{SIX}") == "six"
    assert len(upstreams.fetched) == 2


@pytest.mark.parametrize("uri", ["/npm/left-pad/-/is-odd-1.0.0.tgz", "/npm/left-pad/-/left-pad-.tgz",
                                 "/npm/left-pad/-/../left-pad-1.3.0.tgz", "/npm/Left-Pad/-/Left-Pad-1.0.0.tgz"])
def test_npm_paths_not_shaped_like_the_packages_tarball_are_refused(tmp_path, uri):
    checker, upstreams = _aged_checker(tmp_path, "7", datetime(2026, 12, 2, tzinfo=UTC))
    with pytest.raises(program.FileRefusedError):
        checker.check(uri)
    assert upstreams.fetched == []
