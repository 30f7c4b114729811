"""Build the table of Debian packages the roles install: version in trixie, source, licence, security support.

Reads Debian's own data, nothing else:
  - the trixie ``main`` Packages index (a local copy such as a trixie chroot's apt lists, or
    fetched from deb.debian.org), for each package's version, source package and homepage;
  - each package's ``.deb`` from the archive, for its ``/usr/share/doc/<package>/copyright``
    (the licence of the ``Files: *`` stanza of a machine-readable copyright file);
  - the ``debian-security-support`` package of trixie, for packages whose security support
    Debian has declared limited or ended.

The package names default to every ``packages:`` entry of every role's rendered cloud-init, for
every stack in stacks/. Run from the repository root, on a machine that reaches deb.debian.org:

    .venv/bin/python docs/tooling/debian_packages.py

and commit reports/debian-trixie-packages.yaml. The request pack reads that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import yaml

ARCHIVE = "http://deb.debian.org/debian"
CHROOT_LISTS = Path("/var/lib/tb-scratch/trixie-base/var/lib/apt/lists")
OUTPUT = Path("reports/debian-trixie-packages.yaml")
# What the role issues plan to install (gateway, Git server, analytics, mirror), so the table is
# ready when those roles land; the request pack lists only what a role really installs.
PLANNED = (
    "apache2", "libapache2-mod-auth-openidc", "libpam-google-authenticator", "fail2ban", "certbot",
    "gitolite3", "cgit", "fcgiwrap", "nginx", "restic", "nodejs", "npm", "devpi-server", "jupyterhub",
    "r-base", "r-base-core", "python3", "python3-venv", "python3-pip", "git", "unixodbc", "tdsodbc",
    "build-essential", "chrony", "openssl", "ca-certificates", "cloud-init",
)
FIELDS = ("Package", "Version", "Source", "Filename", "Homepage", "Section")


def parse_packages_index(text: str, wanted: set[str]) -> dict[str, dict[str, str]]:
    """Package name -> the fields kept, for the wanted packages of a Packages index."""
    found: dict[str, dict[str, str]] = {}
    for stanza in text.split("\n\n"):
        match = re.search(r"^Package: (\S+)$", stanza, re.M)
        if not match or match.group(1) not in wanted:
            continue
        fields = dict(re.findall(rf"^({'|'.join(FIELDS)}): (.+)$", stanza, re.M))
        # "Source: openssh (1:10.0p1-7)" names the source and, when it differs, its version.
        fields["Source"] = fields.get("Source", fields["Package"]).split()[0]
        found[match.group(1)] = fields
    return found


def licence_of(copyright_text: str) -> str:
    """The licence of the ``Files: *`` stanza of a DEP-5 copyright file, or why there is none."""
    if not copyright_text.startswith(("Format:", "Format-Specification:")):
        return "not machine-readable (see the package's copyright file)"
    for stanza in copyright_text.split("\n\n"):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
            match = re.search(r"^License:\s*(.+)$", stanza, re.M)
            if match:
                return match.group(1).strip()
    return "no Files: * stanza (see the package's copyright file)"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (a fixed https/http archive URL)
        return response.read()


def _deb_member(deb: bytes, wanted: str) -> tuple[str | None, str | None]:
    """(text, symlink target) of one file of a .deb's data, via dpkg-deb (Debian's own tool)."""
    with tempfile.NamedTemporaryFile(suffix=".deb") as handle:
        handle.write(deb)
        handle.flush()
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", handle.name], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {member.name.lstrip("./"): member for member in archive.getmembers()}
        directory = str(Path(wanted).parent)
        if directory in members and members[directory].issym():
            return None, members[directory].linkname
        member = members.get(wanted)
        if member is None:
            return None, None
        if member.issym():
            return None, member.linkname
        extracted = archive.extractfile(member)
        return (extracted.read().decode("utf-8", "replace") if extracted else None), None


def _copyright(index: dict[str, dict[str, str]], package: str, all_index_text: str) -> str:
    seen = set()
    while package not in seen:
        seen.add(package)
        if package not in index:
            index.update(parse_packages_index(all_index_text, {package}))
        deb = _fetch(f"{ARCHIVE}/{index[package]['Filename']}")
        text, link = _deb_member(deb, f"usr/share/doc/{package}/copyright")
        if text is not None:
            return text
        if link is None:
            break
        package = Path(link).name if "/" not in link.rstrip("/") else Path(link.rstrip("/")).parent.name
    return ""


def security_support_notes(deb: bytes) -> list[tuple[str, str]]:
    """(source package pattern, Debian's note) from debian-security-support's list for Debian 13."""
    text, _ = _deb_member(deb, "usr/share/debian-security-support/security-support.deb13")
    notes = []
    for line in (text or "").splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, status, *rest = line.split(None, 2)
            notes.append((pattern, f"{status}: {rest[0].strip()}" if rest else status))
    return notes


def support_of(source: str, notes: list[tuple[str, str]]) -> str:
    for pattern, note in notes:
        if re.fullmatch(pattern, source):
            return note
    return "regular (not listed as limited or ended by debian-security-support)"


def role_packages() -> set[str]:
    from blueprints.cloud_init import render_user_data
    from blueprints.topology import plan_machines
    from validation.stack_config import load_stack

    names: set[str] = set()
    for stack in sorted(Path("stacks").glob("*.yaml")):
        config = load_stack(stack)
        for machine in plan_machines(config):
            names.update(yaml.safe_load(render_user_data(config, machine)).get("packages", []))
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", nargs="*", help="package names (default: every role's cloud-init packages)")
    parser.add_argument("--also", nargs="*", default=list(PLANNED),
                        help="packages the roles are planned to install, listed too when trixie has them")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    local = CHROOT_LISTS / "deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages"
    if local.exists():
        index_text = local.read_text(encoding="utf-8")
        release_text = (CHROOT_LISTS / "deb.debian.org_debian_dists_trixie_Release").read_text(encoding="utf-8")
        index_source = f"{ARCHIVE}/dists/trixie/main/binary-amd64/Packages (apt lists of a trixie chroot)"
    else:
        index_text = lzma.decompress(_fetch(f"{ARCHIVE}/dists/trixie/main/binary-amd64/Packages.xz")).decode()
        release_text = _fetch(f"{ARCHIVE}/dists/trixie/Release").decode()
        index_source = f"{ARCHIVE}/dists/trixie/main/binary-amd64/Packages.xz"
    release_date = re.search(r"^Date: (.+)$", release_text, re.M)
    release_version = re.search(r"^Version: (.+)$", release_text, re.M)

    wanted = set(args.packages) or role_packages()
    index = parse_packages_index(index_text, wanted | set(args.also) | {"debian-security-support"})
    missing = sorted(wanted - set(index))
    if missing:
        print(f"not in trixie main: {', '.join(missing)}", file=sys.stderr)
        return 2
    absent = sorted(set(args.also) - set(index))
    if absent:
        print(f"planned but not in trixie main, left out: {', '.join(absent)}", file=sys.stderr)
    wanted |= set(args.also) & set(index)
    support_pkg = index["debian-security-support"]
    support = security_support_notes(_fetch(f"{ARCHIVE}/{support_pkg['Filename']}"))

    table = {}
    for name in sorted(wanted):
        fields = index[name]
        print(f"{name} {fields['Version']}", file=sys.stderr)
        table[name] = {
            "version": fields["Version"],
            "source": fields["Source"],
            "section": fields.get("Section", ""),
            "homepage": fields.get("Homepage", ""),
            "licence": licence_of(_copyright(index, name, index_text)),
            "security_support": support_of(fields["Source"], support),
        }
    document = {
        "generated": dt.date.today().isoformat(),
        "generated_by": "docs/tooling/debian_packages.py",
        "release": "trixie",
        "release_version": release_version.group(1) if release_version else "",
        "index": index_source,
        "index_date": release_date.group(1) if release_date else "",
        "security_support_data": f"debian-security-support {support_pkg['Version']} (trixie)",
        "packages": table,
    }
    header = ("# Debian 13 (trixie) packages the roles install, from Debian's own data. Generated: do not edit;\n"
              "# run .venv/bin/python docs/tooling/debian_packages.py and commit the result.\n")
    args.output.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    print(f"wrote {args.output} ({len(table)} packages)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
