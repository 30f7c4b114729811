"""The provenance tool's parsing of Debian's data (the network part is run by hand; see its docstring)."""

import importlib.util

import yaml

from reports.request_pack import PROVENANCE
from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("debian_packages", REPO / "docs" / "tooling" / "debian_packages.py")
debian_packages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debian_packages)

INDEX = """Package: openssh-server
Source: openssh (1:10.0p1-7)
Version: 1:10.0p1-7+deb13u4
Section: net
Filename: pool/main/o/openssh/openssh-server_10.0p1-7+deb13u4_amd64.deb
Homepage: https://www.openssh.com/

Package: unattended-upgrades
Version: 2.12
Section: admin
Filename: pool/main/u/unattended-upgrades/unattended-upgrades_2.12_all.deb
"""


def test_packages_index_gives_version_and_source():
    found = debian_packages.parse_packages_index(INDEX, {"openssh-server", "unattended-upgrades", "absent"})
    assert found["openssh-server"]["Version"] == "1:10.0p1-7+deb13u4"
    assert found["openssh-server"]["Source"] == "openssh"
    assert found["unattended-upgrades"]["Source"] == "unattended-upgrades"  # no Source: the package itself
    assert "absent" not in found


def test_licence_from_a_machine_readable_copyright_file():
    text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: 2020 Someone\nLicense: GPL-2+\n\nFiles: debian/*\nLicense: MIT\n")
    assert debian_packages.licence_of(text) == "GPL-2+"
    assert debian_packages.licence_of("This package was debianized by...").startswith("not machine-readable")


def test_security_support_patterns_match_source_packages():
    notes = [("golang.*", "limited: see the release notes"), ("consul", "non-supported: 2023-09-20")]
    assert debian_packages.support_of("golang-1.24", notes) == "limited: see the release notes"
    assert debian_packages.support_of("openssh", notes).startswith("regular")


def test_committed_table_is_dated_and_sourced():
    table = yaml.safe_load(PROVENANCE.read_text())
    assert table["release"] == "trixie"
    assert table["generated"] and table["index_date"] and table["security_support_data"]
    for name, row in table["packages"].items():
        assert row["version"] and row["source"] and row["licence"] and row["security_support"], name
