"""Markup planted in every text field of a stack file never reaches a generated document as markup.

The schema is walked field by field (tests/hostile/stack_documents.py): each string field that accepts
one of the payloads below (as it is, as an address, or after a valid value such as an SSH key's
comment) gets it, the stack still validates, and every document generated from its plan (request
pack in Markdown and HTML, reference page, diagram, cost report, checkov page) is searched for the
payload as markup."""

import copy
import functools
import re
from html.parser import HTMLParser

import pytest

from reports.markdown_text import markdown_to_html, md_text
from tests.hostile.stack_documents import FIELDS, dump, example, get, has, put

PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "{{ 7*7 }}")
# The same payloads with no spaces, for fields that refuse spaces (an e-mail address).
COMPACT = ("<script>alert(1)</script>", "<img/src=x/onerror=alert(1)>", "[x](javascript:alert(1))", "{{7*7}}")
# What the payloads are, as markup: none may appear raw in any generated Markdown or HTML.
RAW_MARKUP = ("<script", "<img src=x", "<img/src=x", "](javascript:", "{{")


def _candidates(current):
    if isinstance(current, str):  # after a valid value: an SSH key's comment, for example
        yield f"{current} {' '.join(PAYLOADS)}"
        yield from (f"{current} {p}" for p in PAYLOADS)
    yield " ".join(PAYLOADS)  # every payload at once
    yield from PAYLOADS
    yield "".join(COMPACT) + "@example.nhs.uk"
    yield from (f"{c}@example.nhs.uk" for c in COMPACT)


def _accepts(schema, value):
    pattern = schema.get("regex")
    return (len(value) <= schema.get("maxlength", 10**6)
            and (pattern is None or re.fullmatch(pattern, value) is not None))


def _valid_with(document, field, value):
    """Whether the validator (schema and semantic checks) accepts the value in this field."""
    from validation.stack_config import validate_document

    trial = copy.deepcopy(document)
    put(trial, field.path, value)
    return not any(problem.path == field.dotted for problem in validate_document(trial)[1])


@functools.cache
def _planted_once():
    document = example()
    planted, closed = {}, []
    for field in FIELDS:
        if field.schema.get("type") != "string" or "allowed" in field.schema:
            continue
        current = get(document, field.path) if has(document, field.path) else None
        value = next((v for v in _candidates(current)
                      if _accepts(field.schema, v) and _valid_with(document, field, v)), None)
        if value is None:
            closed.append(field.dotted)
            continue
        put(document, field.path, value)
        planted[field.dotted] = value
    return document, planted, closed


def _planted():
    """The example stack with a payload in every string field that accepts one, and the fields that refuse all."""
    document, planted, closed = _planted_once()
    return copy.deepcopy(document), dict(planted), list(closed)


def test_markup_fields_are_found_by_walking_the_schema():
    _, planted, closed = _planted()
    # The fields known to let markup through today; a new one is planted automatically.
    assert {"tags.owner", "admin.ssh_public_keys[0]", "roles.git_server.users[0].ssh_public_key",
            "roles.gateway.ssh_users[0].ssh_public_key"} <= set(planted)
    assert "trust.name" in closed  # letters, digits and a little punctuation only


@pytest.fixture(scope="module")
def hostile_plan(tmp_path_factory):
    from validation.plan_recorder import record_plan
    from validation.stack_config import load_stack

    document, planted, _ = _planted()
    path = tmp_path_factory.mktemp("hostile") / "hostile.yaml"
    path.write_text(dump(document))
    config = load_stack(path)  # the planted stack is valid: the payloads are accepted, not refused
    assert config["tags"]["owner"] == planted["tags.owner"]
    return record_plan(path), planted


@pytest.fixture(scope="module")
def documents(hostile_plan):
    from reports.checkov_skips_page import render_skip_page
    from reports.costing import estimate, render_markdown
    from reports.reference_docs import render_dot, render_page
    from reports.request_pack import render

    plan, _ = hostile_plan
    markdown, html = render(plan)
    cost = render_markdown(estimate(plan))
    return {"request-pack.md": markdown, "request-pack.html": html, "reference index.md": render_page(plan),
            "reference index.html": markdown_to_html(render_page(plan)), "cost.md": cost,
            "cost.html": markdown_to_html(cost), "architecture.dot": render_dot(plan),
            "checkov-skips.md": render_skip_page([plan])}


def test_the_planted_values_reach_the_documents_escaped(documents, hostile_plan):
    _, planted = hostile_plan
    owner = md_text(planted["tags.owner"])
    assert owner in documents["request-pack.md"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in documents["request-pack.html"]


@pytest.mark.parametrize("name", ["request-pack.md", "request-pack.html", "reference index.md",
                                  "reference index.html", "cost.md", "cost.html", "architecture.dot",
                                  "checkov-skips.md"])
def test_no_payload_appears_as_markup(documents, name):
    text = documents[name]
    found = [markup for markup in RAW_MARKUP if markup in text]
    assert found == [], f"{name} carries {found}"
    if name.endswith(".html"):
        _assert_no_active_html(text)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _assert_no_active_html(html):
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"script", "iframe", "object", "embed"}, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").strip().lower().startswith("javascript:"), (tag, attrs)
        if tag == "img":  # only the diagram the code draws, embedded or beside the page
            assert attrs["src"].startswith("data:image/svg+xml;base64,") or attrs["src"] == "architecture.svg"


@pytest.mark.parametrize("payload", [*PAYLOADS, "a | b", "*bold* _em_ `code`", "# heading", "\\[x\\]", "&amp;"])
def test_md_text_shows_exactly_the_text(payload):
    html = markdown_to_html(f"| a |\n|---|\n| {md_text(payload)} |")
    cell = re.search(r"<td>(.*)</td>", html, re.S).group(1)
    parser = HTMLParser()
    parsed = []
    parser.handle_data = parsed.append
    parser.feed(cell)
    parser.close()
    assert "".join(parsed) == payload and "<" not in cell.replace("&lt;", "")


def test_markdown_to_html_passes_no_raw_html_or_autolink():
    html = markdown_to_html("<div onclick=x>a</div>\n\nb <b>c</b> <https://example.org> <x@example.org>")
    assert "<div" not in html and "<b>" not in html and "<a " not in html

