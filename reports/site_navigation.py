"""The site navigation's Reference section, written from the generated pages themselves.

mkdocs builds strictly: a generated page missing from the navigation fails the build. So
`blueprints docs` rewrites the lines between two marker comments in mkdocs.yml from what is
under docs/reference/ after it has written it: adding a stack file and running `blueprints docs`
once gives its pages and their place in the navigation. The drift check compares those lines too.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

BEGIN = "  # begin: the Reference section is written by `blueprints docs` (reports/site_navigation.py)"
END = "  # end: written by `blueprints docs`"
DEFAULT_STACK = "example"  # the stack a reader meets first
_STACK_PAGE_TITLES = {"index.md": "", "request-pack.md": ", request pack"}


def _title(page: Path) -> str:
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].replace("`", "").removeprefix("Reference: ").strip()
    return page.stem.replace("-", " ")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reference_entries(reference_dir: Path, docs_dir: Path) -> list[tuple[str, str]]:
    """(title, path relative to docs_dir) for every generated page: each stack's pages (the default
    stack first, then by name), then the pages about every stack."""
    stacks = sorted((d for d in reference_dir.iterdir() if d.is_dir() and (d / "index.md").exists()),
                    key=lambda d: (d.name != DEFAULT_STACK, d.name)) if reference_dir.is_dir() else []
    entries: list[tuple[str, str]] = []
    for stack in stacks:
        pages = sorted(stack.glob("*.md"), key=lambda p: (p.name != "index.md", p.name))
        for page in pages:
            suffix = _STACK_PAGE_TITLES.get(page.name, f", {_title(page)}")
            entries.append((f"Stack {stack.name}{suffix}", page.relative_to(docs_dir).as_posix()))
    for page in sorted(reference_dir.glob("*.md")):
        entries.append((_title(page), page.relative_to(docs_dir).as_posix()))
    return entries


def render_section(entries: list[tuple[str, str]]) -> str:
    lines = [BEGIN, "  - Reference:"]
    lines += [f"      - {_quote(title)}: {path}" for title, path in entries]
    return "\n".join([*lines, END])


_SECTION = re.compile(rf"^{re.escape(BEGIN)}\n.*?^{re.escape(END)}$", re.M | re.S)


class NavigationError(Exception):
    pass


def docs_dir_of(site_config: Path) -> Path:
    config = yaml.safe_load(site_config.read_text(encoding="utf-8")) or {}
    return site_config.parent / config.get("docs_dir", "docs")


def site_config_for(reference_dir: Path) -> Path | None:
    """The mkdocs.yml whose pages include reference_dir, looking upwards from it; None for a
    directory outside any site (a scratch copy), whose navigation nobody builds."""
    reference = reference_dir.resolve()
    for folder in reference.parents:
        config = folder / "mkdocs.yml"
        if config.is_file():
            return config if reference.is_relative_to(docs_dir_of(config).resolve()) else None
    return None


def expected_config(site_config: Path, reference_dir: Path) -> tuple[str, str]:
    """(the file as it is, the file with its Reference section written from reference_dir)."""
    text = site_config.read_text(encoding="utf-8")
    if not _SECTION.search(text):
        raise NavigationError(f"{site_config}: the navigation has no lines between {BEGIN.strip()!r} and "
                              f"{END.strip()!r}; put them around the Reference section of nav")
    docs_dir = docs_dir_of(site_config).resolve()
    section = render_section(reference_entries(reference_dir.resolve(), docs_dir))
    return text, _SECTION.sub(lambda _: section, text, count=1)


def write_navigation(site_config: Path, reference_dir: Path) -> bool:
    """Rewrite the Reference section; True when the file changed."""
    text, fresh = expected_config(site_config, reference_dir)
    if fresh != text:
        site_config.write_text(fresh, encoding="utf-8")
    return fresh != text
