"""The package mirror's cloud-init: what it installs, how it is configured, how stack values land."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from blueprints.cloud_init import MAX_USER_DATA_BYTES, render_user_data, written_files
from blueprints.package_mirror import verdaccio_lock
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document

FILES = Path(__file__).resolve().parents[2] / "blueprints" / "package_mirror" / "files"


def _mirror_document(config) -> dict:
    machine = next(m for m in plan_machines(config) if m.role == "package_mirror")
    data = render_user_data(config, machine)
    assert len(data) <= MAX_USER_DATA_BYTES
    return yaml.safe_load(data)


def _files(document) -> dict[str, dict]:
    return {entry["path"]: entry for entry in document["write_files"]}


def test_installs_debian_packages_for_every_ecosystem(example_config):
    packages = set(_mirror_document(example_config)["packages"])
    assert {"apt-cacher-ng", "nginx", "nodejs", "python3-venv", "unattended-upgrades"} <= packages


def test_the_mirror_itself_has_no_apt_proxy(example_config):
    assert "apt" not in _mirror_document(example_config)


def test_apt_cacher_ng_uses_the_stack_upstreams_and_only_those(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["package_mirror"]["upstreams"]["debian"] = "http://debian.example.nhs.uk/debian"
    files = _files(_mirror_document(config))
    assert files["/etc/apt-cacher-ng/backends_debian"]["content"] == "http://debian.example.nhs.uk/debian/\n"
    assert files["/etc/apt-cacher-ng/backends_debian"]["defer"] is True


def _acng_settings(texts: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """apt-cacher-ng's settings as it reads them: every *.conf in name order, the last one winning."""
    settings: dict[str, str] = {}
    remaps: dict[str, str] = {}
    for name in sorted(texts):
        for line in texts[name].splitlines():
            line = line.split("#", 1)[0].strip()
            if ":" not in line:
                continue
            key, value = (part.strip() for part in line.split(":", 1))
            (remaps if key.startswith("Remap-") else settings)[key] = value
    return settings, remaps


def _acng_files(document) -> dict[str, str]:
    return {path.rsplit("/", 1)[1]: text for path, text in written_files(document).items()
            if path.startswith("/etc/apt-cacher-ng/") and path.endswith(".conf")}


def test_apt_cacher_ng_serves_debian_and_debian_security_only(example_config):
    files = _acng_files(_mirror_document(example_config))
    assert set(files) == {"acng.conf", "zzz-trust-blueprints.conf"}
    _, remaps = _acng_settings(files)
    # Debian's own acng.conf remaps Ubuntu, Kali, Fedora, Arch, ...: written over, only two remain.
    assert set(remaps) == {"Remap-debrep", "Remap-secdeb"}
    assert remaps["Remap-debrep"].split(";")[1].strip() == "file:backends_debian"
    assert remaps["Remap-secdeb"].split(";")[1].strip() == "file:backends_debian_security"
    assert remaps["Remap-debrep"].split(";")[0].split() == ["file:deb_mirror*.gz", "/debian"]  # Debian's mirror list
    security = remaps["Remap-secdeb"].split(";")[0].split()
    assert all(name.endswith("/debian-security") or name == "security.debian.org" for name in security), security


def test_apt_cacher_ng_refuses_other_hosts_and_every_tunnel_whatever_debconf_says(example_config):
    files = _acng_files(_mirror_document(example_config))
    # The worst answer to the package's setup question ("allow HTTP tunnels") writes this file.
    files["zz_debconf.conf"] = "Proxy:\nPassThroughPattern: .*\n"
    settings, _ = _acng_settings(files)
    assert settings["ForceManaged"] == "1"
    pattern = re.compile(settings["PassThroughPattern"])
    for target in ("bugs.debian.org:443", "changelogs.ubuntu.com:443", "example.com:443", "deb.debian.org:80"):
        assert not pattern.search(target), target
    assert settings.get("LocalDirs", "") == ""


def test_apt_cacher_ng_report_page_has_a_secret_name_made_on_the_machine(example_config):
    document = _mirror_document(example_config)
    # No written file names a report page (Debian's default acng-report.html is gone with its acng.conf).
    settings, _ = _acng_settings(_acng_files(document))
    assert "ReportPage" not in settings and "AdminAuth" not in settings
    commands = "\n".join(str(step) for step in document["runcmd"])
    made = commands.index("zzz-trust-blueprints-admin.conf")
    assert "install -m 0640 -o root -g apt-cacher-ng /dev/null \"$acng_admin\"" in commands
    assert 'ReportPage: acng-{secrets.token_hex(16)}.html' in commands
    assert "AdminAuth: admin:{secrets.token_urlsafe(32)}" in commands
    assert made < commands.index("systemctl restart apt-cacher-ng")


def test_apt_cacher_ng_usage_page_does_not_name_the_report_page(example_config):
    document = _mirror_document(example_config)
    settings, _ = _acng_settings(_acng_files(document))
    support = settings["SupportDir"]
    commands = "\n".join(str(step) for step in document["runcmd"])
    assert f"acng_support={support}\n" in commands
    assert 'cp -as /usr/lib/apt-cacher-ng/. "$acng_support"/' in commands
    ours = commands.index('install -m 0644 /etc/trust-blueprints/mirror/apt-cacher-ng-userinfo.html '
                          '"$acng_support/userinfo.html"')
    assert commands.index("cp -as") < ours < commands.index("systemctl restart apt-cacher-ng")
    page = written_files(document)["/etc/trust-blueprints/mirror/apt-cacher-ng-userinfo.html"]
    assert "cfg:" not in page and "report" not in page.lower()


def test_bundled_files_are_written_byte_for_byte(example_config):
    files = written_files(_mirror_document(example_config))
    for path, source in {
        "/usr/local/sbin/mirror-allowlist": "mirror-allowlist.py",
        "/etc/nginx/sites-available/trust-mirror": "nginx-site.conf",
        "/etc/trust-blueprints/mirror/devpi-requirements.txt": "devpi-requirements.txt",
        "/opt/verdaccio/package.json": "verdaccio-package.json",
        "/usr/local/sbin/mirror-file-check": "mirror-file-check.py",
        "/etc/apt-cacher-ng/acng.conf": "apt-cacher-ng.conf",
        "/etc/apt-cacher-ng/zzz-trust-blueprints.conf": "apt-cacher-ng-override.conf",
        "/etc/trust-blueprints/mirror/apt-cacher-ng-userinfo.html": "apt-cacher-ng-userinfo.html",
    }.items():
        assert files[path] == (FILES / source).read_text(), path


def _requirements() -> dict[str, list[str]]:
    """requirement -> its hashes, from devpi-requirements.txt (continuation lines joined)."""
    text = (FILES / "devpi-requirements.txt").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            pins[words[0]] = [word.removeprefix("--hash=") for word in words[1:]]
    return pins


def test_every_python_package_is_pinned_exactly_with_its_hash(example_config):
    pins = _requirements()
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.]+", pin) for pin in pins)
    assert all(hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes) for hashes in pins.values())
    assert any(pin.startswith("devpi-server==") for pin in pins)
    assert any(pin.startswith("devpi-constrained==") for pin in pins)
    commands = "\n".join(str(step) for step in _mirror_document(example_config)["runcmd"])
    install = next(line for line in commands.splitlines() if "devpi-requirements.txt" in line and "pip install" in line)
    assert "--require-hashes" in install and "--only-binary=:all:" in install
    verdaccio = json.loads((FILES / "verdaccio-package.json").read_text())
    assert all(version[0].isdigit() for version in verdaccio["dependencies"].values())


def test_the_pypi_file_checker_runs_on_loopback_as_a_user_of_its_own(example_config):
    document = _mirror_document(example_config)
    unit = _files(document)["/etc/systemd/system/mirror-file-check.service"]["content"]
    assert "DynamicUser=yes" in unit and "Restart=on-failure" in unit
    assert "--listen 127.0.0.1:3150" in unit
    site = (FILES / "nginx-site.conf").read_text()
    assert "proxy_pass http://127.0.0.1:3150/;" in site
    commands = "\n".join(str(step) for step in document["runcmd"])
    assert "systemctl enable --now devpi.service mirror-file-check.service" in commands


def test_the_minimum_release_age_reaches_the_file_checker_in_place(example_config):
    unit = _files(_mirror_document(example_config))["/etc/systemd/system/mirror-file-check.service"]["content"]
    assert "--age-file /etc/trust-blueprints/mirror/minimum-release-age" in unit
    assert "--settings /etc/trust-blueprints/mirror/settings.json" in unit
    site = (FILES / "nginx-site.conf").read_text()
    assert site.count("auth_request /mirror-file-check;") == 2  # PyPI files and npm tarballs
    machine = next(m for m in plan_machines(example_config) if m.role == "package_mirror")
    path = "/etc/trust-blueprints/mirror/minimum-release-age"
    assert document_files(settings_document(example_config, machine))[path].splitlines()[-1] == "0"
    config = copy.deepcopy(example_config)
    config["roles"]["package_mirror"]["minimum_release_age_days"] = 7
    written = document_files(settings_document(config, machine))[path]
    checker = _file_check_program()
    assert checker.age_days(written) == 7  # read by the checker's own rule


def _file_check_program():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mirror_file_check_render", FILES / "mirror-file-check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_services_restart_on_failure_as_their_own_users(example_config):
    files = _files(_mirror_document(example_config))
    for unit, user in (("devpi", "devpi"), ("verdaccio", "verdaccio")):
        content = files[f"/etc/systemd/system/{unit}.service"]["content"]
        assert "Restart=on-failure" in content
        assert f"User={user}" in content
        assert "--host 127.0.0.1" in content or "127.0.0.1" not in content


def test_stack_mode_upstreams_and_allowlists_reach_the_mirror(example_config):
    config = copy.deepcopy(example_config)
    mirror = config["roles"]["package_mirror"]
    mirror["mode"] = "open"
    mirror["allowlists"]["pypi"] = ["pandas>=2,<3", "numpy"]
    mirror["upstreams"]["cran"] = "https://cran.example.nhs.uk/cran"
    files = _files(_mirror_document(config))
    settings = json.loads(files["/etc/trust-blueprints/mirror/settings.json"]["content"])
    assert settings["mode"] == "open"
    assert settings["upstreams"]["cran"] == "https://cran.example.nhs.uk/cran"
    assert settings["allowlist_repository"] == "git@git.exnhs-dev.internal:package-requests"
    assert "/etc/trust-blueprints/mirror/allowlist.yaml" not in files  # mirror-allowlist writes it
    machine = next(m for m in plan_machines(config) if m.role == "package_mirror")
    allowlists = yaml.safe_load(
        document_files(settings_document(config, machine))["/etc/trust-blueprints/mirror/stack-allowlist.yaml"])
    assert allowlists["pypi"] == ["pandas>=2,<3", "numpy"]
    assert allowlists["cran"] == mirror["allowlists"]["cran"]


def test_without_a_git_server_there_is_no_pull_timer(example_config):
    config = copy.deepcopy(example_config)
    del config["roles"]["git_server"]
    files = _files(_mirror_document(config))
    assert "/etc/systemd/system/mirror-allowlist-pull.timer" not in files
    settings = json.loads(files["/etc/trust-blueprints/mirror/settings.json"]["content"])
    assert settings["allowlist_repository"] is None
    assert "/etc/systemd/system/mirror-allowlist-pull.timer" in _files(_mirror_document(example_config))


def test_unattended_upgrades_are_on(example_config):
    files = _files(_mirror_document(example_config))
    content = files["/etc/apt/apt.conf.d/20auto-upgrades"]["content"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in content


def test_provisioning_forgets_the_applied_package_requests_commit(example_config):
    # cloud-init writes the stack's lists (again, on a re-run): the next pull must apply main's list
    # even when that commit was applied before, or a merged request would stay undone.
    tool = (FILES / "mirror-allowlist.py").read_text()
    assert 'REQUESTS_CHECKOUT = Path("/var/lib/trust-mirror/package-requests")' in tool
    assert 'REQUESTS_APPLIED = REQUESTS_CHECKOUT.parent / "package-requests-applied"' in tool
    commands = "\n".join(str(step) for step in _mirror_document(example_config)["runcmd"])
    assert "rm -f /var/lib/trust-mirror/package-requests-applied" in commands
    assert commands.index("package-requests-applied") < commands.index("enable --now mirror-allowlist-pull.timer")


def test_the_repository_lockfile_pins_every_verdaccio_package_with_its_sha512():
    package = json.loads((FILES / "verdaccio-package.json").read_text())
    lock = json.loads((FILES / "verdaccio-package-lock.json").read_text())
    assert lock["name"] == package["name"] and lock["lockfileVersion"] >= 2
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    entries = {path: entry for path, entry in lock["packages"].items() if path and not entry.get("link")}
    assert entries["node_modules/verdaccio"]["version"] == package["dependencies"]["verdaccio"]
    assert all(re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"]) for entry in entries.values())
    for name, version in package["overrides"].items():
        versions = {entry["version"] for path, entry in entries.items() if path.endswith(f"node_modules/{name}")}
        assert versions == {version}, name


def _verdaccio_step(config) -> str:
    commands = "\n".join(str(step) for step in _mirror_document(config)["runcmd"])
    start = commands.index("npm-cli.js install --package-lock-only")
    return commands[commands.rindex("\n", 0, start):commands.index("npm-cli.js ci", start)]


def test_the_mirror_installs_verdaccio_only_if_it_resolves_to_the_repository_lockfile(example_config, tmp_path):
    step = _verdaccio_step(example_config)
    assert f"--before={verdaccio_lock.RESOLVED_BEFORE}" in step
    assert "--ignore-scripts" in step and "--omit-lockfile-registry-resolved" in step
    pinned = re.search(r'\[ "\$lock_digest" = ([0-9a-f]{64}) \] \|\| \{ echo', step)
    assert pinned and pinned.group(1) == verdaccio_lock.repository_digest()
    # The program the mirror runs gives the repository lockfile's digest, and another for a lockfile
    # with one hash changed: the check can refuse.
    program = step[step.index("<<'DIGEST'\n") + len("<<'DIGEST'\n"):step.index("\nDIGEST\n")]
    lock = json.loads((FILES / "verdaccio-package-lock.json").read_text())
    (tmp_path / "same.json").write_text(json.dumps(lock, indent=2))
    lock["packages"]["node_modules/verdaccio"]["integrity"] = "sha512-" + "A" * 86 + "=="
    (tmp_path / "changed.json").write_text(json.dumps(lock))
    for name, expected in (("same.json", pinned.group(1)), ("changed.json", None)):
        result = subprocess.run([sys.executable, "-", str(tmp_path / name)], input=program, capture_output=True,
                                text=True, check=True)
        assert (result.stdout.strip() == pinned.group(1)) == (expected is not None), name
    commands = "\n".join(str(step) for step in _mirror_document(example_config)["runcmd"])
    assert "npm-cli.js ci --omit=dev --ignore-scripts" in commands
    assert "npm-cli.js install --omit=dev" not in commands
