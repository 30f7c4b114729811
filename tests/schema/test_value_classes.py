"""Kinds of value refused wherever they appear, found by walking the schema: ports TCP does not
have in URL fields, blank text in any text field, unquoted times, version specifiers no version
meets; and the address plan's capacity, its hints, and the approved VM sizes, which validate and
the plan's policy read from one table.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re

import pytest
import yaml

from blueprints.regions import region_facts
from blueprints.roles import role
from blueprints.settings_fields import APPROVED_VM_SIZE_FAMILIES, APPROVED_VM_SIZES_ALLOWED, TIME_PATTERN
from cli.main import main
from tests.conftest import EXAMPLE
from tests.hostile.stack_documents import FIELDS, dump, example, put
from validation.plan_model import PlannedResource
from validation.policies import vm_rules
from validation.schema import URL_PATTERN
from validation.stack_config import validate_document

STRING_FIELDS = [field for field in FIELDS if field.type == "string"]
URL_FIELDS = [field for field in STRING_FIELDS if field.schema.get("meta", {}).get("kind") == "url"]
TIME_FIELDS = [field for field in STRING_FIELDS if field.schema.get("regex") == TIME_PATTERN]


def _problems(document):
    return validate_document(document)[1]


def _paths(document):
    return {problem.path for problem in _problems(document)}


def _cli(tmp_path, text):
    path = tmp_path / "stack.yaml"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", "--no-plan", str(path)])
    return code, err.getvalue()


# --- URLs ------------------------------------------------------------------------------------

def test_every_field_with_the_url_pattern_declares_its_kind():
    patterned = {f.dotted for f in STRING_FIELDS if f.schema.get("regex") == URL_PATTERN}
    assert patterned and patterned == {f.dotted for f in URL_FIELDS}


@pytest.mark.parametrize("field", URL_FIELDS, ids=lambda f: f.dotted)
@pytest.mark.parametrize("url", ["https://mirror.example.nhs.uk:65536/simple", "http://deb.example.org:99999/debian",
                                 "https://pypi.example.org:0/", "https://-bad-.example.org/", "https://a..b/x"])
def test_a_url_with_a_port_or_host_no_server_has_is_refused(field, url):
    document = example()
    put(document, field.path, url)
    assert field.dotted in _paths(document)


@pytest.mark.parametrize("field", URL_FIELDS, ids=lambda f: f.dotted)
def test_a_url_with_an_ordinary_port_is_accepted(field):
    document = example()
    put(document, field.path, "https://mirror.example.nhs.uk:8443/simple")
    assert field.dotted not in _paths(document)


# --- blank text ------------------------------------------------------------------------------

def test_every_text_field_has_a_pattern_or_a_list_of_values():
    # The blank-text rule lives in the pattern check (validation/stack_validator.py).
    assert all("regex" in f.schema or "allowed" in f.schema for f in STRING_FIELDS)


@pytest.mark.parametrize("field", STRING_FIELDS, ids=lambda f: f.dotted)
@pytest.mark.parametrize("blank", [" ", "   ", "\t", " \u00a0 "], ids=["space", "spaces", "tab", "nbsp"])
def test_blank_text_is_refused_in_every_text_field(field, blank):
    document = example()
    put(document, field.path, blank)
    paths = _paths(document)
    listed = field.dotted.rpartition("[")[0]
    assert field.dotted in paths or any(p.startswith(listed) for p in paths if listed), (field.dotted, paths)


def test_a_blank_cost_centre_says_what_is_allowed(tmp_path):
    document = example()
    document["tags"]["cost_centre"] = "   "
    code, err = _cli(tmp_path, dump(document))
    assert code == 2 and "tags.cost_centre: must be 1-64 letters" in err and "not blank" in err, err


# --- unquoted times -------------------------------------------------------------------------

@pytest.mark.parametrize("field", TIME_FIELDS, ids=lambda f: f.dotted)
@pytest.mark.parametrize("written, number", [("19:00", 1140), ("1:30", 90), ("23:59:00", 86340)])
def test_an_unquoted_time_is_answered_with_quote_the_time(tmp_path, field, written, number):
    document = example()
    put(document, field.path, "PLACEHOLDER")
    text = dump(document).replace("PLACEHOLDER", written)
    assert yaml.safe_load(text) is not None
    code, err = _cli(tmp_path, text)
    assert code == 2, err
    assert f"{field.dotted}: must be text" in err and f'quote the time: {field.path[-1]}: "{written}"' in err, err
    assert f"reads {written} as the number {number}" in err, err


@pytest.mark.parametrize("field", TIME_FIELDS, ids=lambda f: f.dotted)
def test_an_unquoted_time_with_a_leading_zero_is_text_already(tmp_path, field):
    document = example()
    put(document, field.path, "PLACEHOLDER")
    assert _cli(tmp_path, dump(document).replace("PLACEHOLDER", "01:30"))[0] == 0  # YAML 1.1: not base 60


def test_the_walk_finds_the_time_fields():
    assert {"roles.analytics.auto_shutdown.time", "roles.git_server.backup.time"} <= {f.dotted for f in TIME_FIELDS}


# --- version specifiers ---------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["pandas>=3,<2", "numpy<0", "scipy==1,==2", "polars>=2.0rc1,<2.0",
                                   "requests==2.31,!=2.31"])
def test_specifiers_no_version_meets_are_refused(entry):
    document = example()
    document["roles"]["package_mirror"]["allowlists"]["pypi"] = [entry]
    problems = [p for p in _problems(document) if p.path == "roles.package_mirror.allowlists.pypi[0]"]
    assert problems and "no version meets" in problems[0].allowed, _problems(document)


@pytest.mark.parametrize("entry", ["pandas>=2,<3", "numpy~=1.26", "scipy!=1.0", "polars==1.*", "torch>=2.0rc1,<2.1",
                                   "attrs<=0"])
def test_specifiers_some_version_meets_are_accepted(entry):
    document = example()
    document["roles"]["package_mirror"]["allowlists"]["pypi"] = [entry]
    assert not _problems(document)


# --- capacity and hints ---------------------------------------------------------------------

def _free_range_in(hint: str) -> ipaddress.IPv4Network:
    found = re.search(r"e\.g\. ([0-9.]+/[0-9]+)", hint)
    assert found, hint
    return ipaddress.IPv4Network(found.group(1))


def _assert_free(hint: str, document, replacing: str | None = None) -> None:
    suggested = _free_range_in(hint)
    space = ipaddress.IPv4Network(document["network"]["address_space"])
    assert suggested.subnet_of(space), hint
    for name, cidr in document["network"]["subnets"].items():
        if cidr and name != replacing:
            assert not suggested.overlaps(ipaddress.IPv4Network(cidr)), (hint, name)


@pytest.mark.parametrize("prefix", [29, 28, 27, 26])
def test_analytics_vms_fit_their_subnet_after_azures_five_addresses(prefix):
    room = 2 ** (32 - prefix) - 5 - role("analytics").first_host
    document = example()
    document["network"]["subnets"]["workloads"] = f"10.40.3.0/{prefix}"
    document["roles"]["analytics"]["count"] = min(room, 20)
    assert not _problems(document)
    if room + 1 > 20:
        return  # the schema's own maximum comes first
    document["roles"]["analytics"]["count"] = room + 1
    problems = [p for p in _problems(document) if p.path == "roles.analytics.count"]
    assert problems and f"room for {room}" in problems[0].allowed and "5 of its" in problems[0].allowed
    _assert_free(problems[0].hint, document, replacing="workloads")


def test_a_missing_bastion_subnet_hint_names_a_free_range():
    document = example()
    document["roles"]["gateway"] = {"kind": "bastion"}
    document["network"]["subnets"]["bastion"] = None
    problem = next(p for p in _problems(document) if p.path == "network.subnets.bastion")
    _assert_free(problem.hint, document)
    assert _free_range_in(problem.hint).prefixlen == 26


def test_an_overlapping_subnet_hint_names_a_free_range():
    document = example()
    document["network"]["subnets"]["workloads"] = document["network"]["subnets"]["services"]
    problem = next(p for p in _problems(document) if "overlaps subnet" in p.allowed)
    _assert_free(problem.hint, document, replacing=problem.path.rsplit(".", 1)[-1])


# --- approved VM sizes (TB-VM-008): validate and plan read one table -------------------------

def test_every_size_the_region_facts_describe_is_approved():
    for size in region_facts().vm_sizes:
        assert vm_rules.ALLOWED_VM_SIZE.match(size), size


def test_the_policy_message_names_each_approved_family():
    resource = PlannedResource(urn="u", type=vm_rules.VM, name="vm", azure_name="vm-x", custom=True, parent=None,
                               dependencies=[], inputs={"hardwareProfile": {"vmSize": "Standard_NC6s_v3"}})
    message = vm_rules._allowed_size(resource, None)[0].message  # type: ignore[arg-type]
    assert APPROVED_VM_SIZES_ALLOWED in message
    assert all(name in message for name, _ in APPROVED_VM_SIZE_FAMILIES)


@pytest.mark.parametrize("size, allowed", [("Standard_NC24ads_A100_v4", True), ("Standard_NC4as_T4_v3", True),
                                           ("Standard_NC40ads_H100_v5", True), ("Standard_E8s_v5", True),
                                           ("Standard_NC6s_v3", False), ("Standard_M128ms", False),
                                           ("Standard_D4_v5", False)])
def test_validate_and_the_policy_agree_on_a_size(size, allowed):
    document = example()
    document["roles"]["analytics"]["vm_size"] = size
    problems = [p for p in _problems(document) if p.path == "roles.analytics.vm_size"]
    assert bool(vm_rules.ALLOWED_VM_SIZE.match(size)) is allowed
    assert (not problems) is allowed, problems
    if not allowed:
        assert "TB-VM-008" in problems[0].allowed and APPROVED_VM_SIZES_ALLOWED in problems[0].allowed


def test_the_troubleshooting_gpu_size_validates(tmp_path):
    text = EXAMPLE.read_text().replace("vm_size: Standard_D4s_v5", "vm_size: Standard_NC24ads_A100_v4")
    assert _cli(tmp_path, text) == (0, "")
