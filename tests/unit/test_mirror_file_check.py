"""mirror-file-check, the program nginx asks before serving a PyPI file: offline, against index pages
shaped like devpi's (links relative to the page, hashes in the fragment)."""

from __future__ import annotations

import importlib.util
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
