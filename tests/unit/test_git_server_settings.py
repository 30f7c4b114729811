"""The Git server's settings: the stack's checks on them, the document the VM reads (`blueprints git-server
settings`), and what the VM's program (server_commands) makes of it: gitolite rules, web access lists,
backup targets. Its rendered cloud-config is tested in tests/render/test_git_server_render.py."""

import copy
import http.server
import json
import threading
from typing import ClassVar

import pytest
import yaml

from blueprints.git_server import server_commands
from blueprints.git_server.backup_target import vm_settings
from blueprints.git_server.server_commands import Access
from tests.conftest import EXAMPLE
from validation.stack_config import validate_document
from validation.yaml_source import read_stack_source

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILjONV4zD7ltOVOXqqugk4Obc41KkgphNV3YLv0N9tr+ a@example.nhs.uk"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPvJEMpp/sBUH5l3NBvXyRXPGQRQ7JASHF6jXMiCyCMF b@example.nhs.uk"


def _document():
    document, _ = read_stack_source(EXAMPLE)
    return copy.deepcopy(document)


def _problems(document):
    _, problems = validate_document(document)
    return {(problem.path, problem.allowed) for problem in problems}


def _git_document(document):
    return document["roles"]["git_server"]


def test_example_stack_is_valid_with_its_git_settings():
    assert _problems(_document()) == set()


def test_stack_without_git_settings_gets_empty_defaults():
    document = _document()
    document["airlock"].pop("egress")  # its checkers are a team of these settings
    git = _git_document(document)
    for key in ("teams", "users", "repositories", "backup"):
        git.pop(key)
    config, problems = validate_document(document)
    assert problems == []
    assert config["roles"]["git_server"]["users"] == []
    assert config["roles"]["git_server"]["backup"] == {"directory": "/var/backups/git-server", "time": "01:30",
                                                       "target": "auto"}


def test_unknown_team_reference_is_reported_with_its_path():
    document = _document()
    _git_document(document)["users"][1]["teams"] = ["analysts", "finance"]
    problems = _problems(document)
    assert ("roles.git_server.users[1].teams[1]", "is not a team in roles.git_server.teams") in problems


@pytest.mark.parametrize(("field", "member", "kind"), [
    ("writers", "@finance", "team in roles.git_server.teams"),
    ("readers", "nobody", "user in roles.git_server.users"),
    ("maintainers", "ghost", "user in roles.git_server.users"),
])
def test_unknown_access_list_member_is_reported_with_its_path(field, member, kind):
    document = _document()
    _git_document(document)["repositories"][1][field] = [member]
    assert (f"roles.git_server.repositories[1].{field}[0]", f"is not a {kind}") in _problems(document)


def test_unknown_owner_team_is_reported():
    document = _document()
    _git_document(document)["repositories"][0]["owner_team"] = "estates"
    assert ("roles.git_server.repositories[0].owner_team", "is not a team in roles.git_server.teams") \
        in _problems(document)


def test_bad_and_shared_keys_are_reported():
    document = _document()
    users = _git_document(document)["users"]
    users[0]["ssh_public_key"] = "ssh-dss AAAAB3NzaC1kc3MAAACBAP"
    users[2]["ssh_public_key"] = users[1]["ssh_public_key"]
    paths = dict(_problems(document))
    assert "key type 'ssh-dss'" in paths["roles.git_server.users[0].ssh_public_key"]
    assert paths["roles.git_server.users[2].ssh_public_key"] == "is already the key of user tom.evans"


@pytest.mark.parametrize(("section", "index", "name", "expected"), [
    ("users", 0, "Priya", "must be 1-32 lowercase letters"),
    ("users", 0, "server-admin", "is a name the Git server keeps for itself"),
    ("users", 2, "tom.evans", "names a user twice"),
    ("teams", 1, "all", "is reserved"),
    ("repositories", 1, "gitolite-admin", "is reserved by the Git server"),
    ("repositories", 1, "../etc", "must be lowercase letters"),
])
def test_bad_names_are_reported(section, index, name, expected):
    document = _document()
    _git_document(document)[section][index]["name"] = name
    messages = [allowed for path, allowed in _problems(document) if path.startswith(f"roles.git_server.{section}")]
    assert any(message.startswith(expected) for message in messages), messages


def _settings(example_config):
    """The settings document the VM reads: the stack's, plus the backup container's names."""
    return copy.deepcopy(vm_settings(example_config))


def _rules(conf, repository):
    block = conf.split(f"\nrepo {repository}\n", 1)[1].split("\n\n", 1)[0]
    return [" ".join(line.split()) for line in block.splitlines()]


def test_generated_rules_give_main_and_tags_to_maintainers_only(example_config):
    conf = Access(_settings(example_config), mirror_reader=False).gitolite_conf()
    assert "@analysts = amara.okafor tom.evans" in conf
    assert _rules(conf, "waiting-times") == [
        "- VREF/git-server-review = @all",
        "RW refs/heads/main$ = amara.okafor",
        "- refs/heads/main$ = @all",
        "RW refs/tags/ = amara.okafor",
        "- refs/tags/ = @all",
        "RW+ refs/heads/request/USER/ = amara.okafor @analysts",
        "- refs/heads/request/ = @all",
        "RW+ refs/heads/ = amara.okafor @analysts",
        "- = @all",
        "R = @platform",
    ]


def test_owner_team_maintains_when_no_maintainers_are_named(example_config):
    conf = Access(_settings(example_config), mirror_reader=True).gitolite_conf()
    rules = _rules(conf, "package-requests")
    assert rules[1] == "RW refs/heads/main$ = @platform"
    assert rules[-1] == "R = package-mirror"


def test_package_requests_exists_even_when_the_stack_omits_it(example_config):
    settings = _settings(example_config)
    settings["repositories"] = [r for r in settings["repositories"] if r["name"] != "package-requests"]
    conf = Access(settings, mirror_reader=False).gitolite_conf()
    assert _rules(conf, "package-requests") == [
        "- VREF/git-server-review = @all", "- refs/heads/main$ = @all", "- refs/tags/ = @all",
        "RW+ refs/heads/request/USER/ = @all", "- refs/heads/request/ = @all", "RW+ refs/heads/ = @all",
        "- = @all"]


def test_teams_without_members_grant_nothing(example_config):
    settings = _settings(example_config)
    settings["teams"].append({"name": "estates"})
    settings["repositories"][1]["readers"] = ["@estates"]
    conf = Access(settings, mirror_reader=False).gitolite_conf()
    assert "@estates" not in conf


def test_web_view_lists_only_readable_repositories(example_config):
    access = Access(_settings(example_config), mirror_reader=False)
    # outputs: the airlock's egress repository (every user proposes, @platform checks).
    assert [r["name"] for r in access.readable("priya.shah")] == ["outputs", "package-requests", "waiting-times"]
    assert [r["name"] for r in access.readable("tom.evans")] == ["outputs", "package-requests", "waiting-times"]
    settings = _settings(example_config)
    settings["repositories"][1]["readers"] = []
    assert [r["name"] for r in Access(settings, False).readable("priya.shah")] == ["outputs", "package-requests"]


def test_settings_checks_on_the_vm_match_the_stack_checks(example_config):
    settings = _settings(example_config)
    assert server_commands._problems(settings) == []
    settings["users"][0]["teams"] = ["finance"]
    settings["repositories"][1]["writers"] = ["ghost"]
    assert server_commands._problems(settings) == [
        "users[0].teams[0]: 'finance' is not a team",
        "repositories[1].writers[0]: 'ghost' is not a user or @team",
    ]


def test_apply_refuses_a_bad_file_with_exit_2_and_changes_nothing(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "git-server.yaml"
    bad.write_text("users: [{name: Bad, ssh_public_key: x}]\n")
    monkeypatch.setattr(server_commands.sys, "argv", ["/usr/local/sbin/git-server-apply", str(bad)])
    monkeypatch.setattr(server_commands, "_ensure_gitolite", lambda: pytest.fail("must not change anything"))
    assert server_commands.main() == 2
    err = capsys.readouterr().err
    assert "users[0].name: 'Bad'" in err
    assert "Traceback" not in err


def test_settings_command_writes_what_the_vm_applies(tmp_path, example_config, capsys):
    from cli.main import main

    target = tmp_path / "git-server.yaml"
    assert main(["git-server", "settings", str(EXAMPLE), "-o", str(target)]) == 0
    written = yaml.safe_load(target.read_text())
    assert written == vm_settings(example_config)
    assert server_commands._problems(written) == []


def test_settings_command_refuses_a_stack_without_a_git_server(tmp_path, capsys):
    from cli.main import main

    document = _document()
    del document["roles"]["git_server"]
    document["airlock"].pop("egress")  # egress needs the Git server, and says so first
    stack = tmp_path / "no-git.yaml"
    stack.write_text(yaml.safe_dump(document))
    assert main(["git-server", "settings", str(stack)]) == 2
    assert "roles.git_server is not set" in capsys.readouterr().err


# --- Off-VM backup target ----------------------------------------------------------------------

def test_backup_target_defaults_to_the_environments_blob_container(example_config):
    backup = vm_settings(example_config)["backup"]
    assert backup["target"] == "auto"
    # The account's name depends on the subscription: the VM reads it from its tag, not from here.
    assert backup["azure_blob"] == {"container": "git-server-backups"}


def test_a_directory_only_target_has_no_container_and_no_storage(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["git_server"]["backup"]["target"] = "directory"
    assert "azure_blob" not in vm_settings(config)["backup"]
    assert server_commands._problems(vm_settings(config)) == []


def test_an_unknown_backup_target_names_field_value_and_choices():
    document = _document()
    _git_document(document)["backup"]["target"] = "s3"
    _, problems = validate_document(document)
    assert [(p.path, p.value, p.allowed) for p in problems] == [
        ("roles.git_server.backup.target", "s3", "must be one of auto, directory, azure-blob")]


def test_the_vm_refuses_a_blob_target_without_a_container_name(example_config):
    settings = _settings(example_config)
    settings["backup"]["azure_blob"]["container"] = "Bad_Name"
    settings["backup"]["target"] = "elsewhere"
    assert server_commands._problems(settings) == [
        "backup.target: 'elsewhere' must be one of auto, directory, azure-blob"]
    settings["backup"]["target"] = "azure-blob"
    assert server_commands._problems(settings) == [
        "backup.azure_blob.container: 'Bad_Name' is not a storage container name"]


@pytest.mark.parametrize(("target", "platform", "remote"), [
    ("auto", "azure", "git-backup:git-server-backups"),
    ("auto", "nocloud", None),
    ("azure-blob", "nocloud", "git-backup:git-server-backups"),
    ("directory", "azure", None),
])
def test_apply_writes_the_rclone_remote_only_where_the_target_asks(example_config, tmp_path, monkeypatch,
                                                                    target, platform, remote):
    settings = _settings(example_config)
    settings["backup"]["target"] = target
    settings["backup"]["directory"] = str(tmp_path / "backups")
    for name, path in (("BACKUP_SETTINGS", "backup.json"), ("RCLONE_CONFIG", "rclone.conf"),
                       ("BACKUP_TIMER", "backup.timer")):
        monkeypatch.setattr(server_commands, name, tmp_path / path)
    monkeypatch.setattr(server_commands.shutil, "chown", lambda *args: None)
    monkeypatch.setattr(server_commands, "run", lambda argv, **kwargs: "")
    monkeypatch.setattr(server_commands, "_on_azure", lambda: platform == "azure")
    monkeypatch.setattr(server_commands, "_storage_account", lambda: "stexnhsdevuksgabcdefghij")
    server_commands._update_backup(settings)
    written = yaml.safe_load((tmp_path / "backup.json").read_text())
    assert written["remote"] == remote
    if remote:
        rclone = (tmp_path / "rclone.conf").read_text()
        assert "use_msi = true" in rclone and "account = stexnhsdevuksgabcdefghij" in rclone
        assert "key" not in rclone.replace("no key", "")
    else:
        assert not (tmp_path / "rclone.conf").exists()


# --- The storage account's name, from the VM's tag ----------------------------------------------

ACCOUNT = "stexnhsdevuksg0123456789"


def test_the_account_is_read_from_the_vms_tag_among_others():
    tags = [{"name": "trust", "value": "exnhs"}, {"name": server_commands.STORAGE_ACCOUNT_TAG, "value": ACCOUNT}]
    assert server_commands.account_in_tags(tags) == ACCOUNT


@pytest.mark.parametrize(("tags", "message"), [
    ([{"name": "trust", "value": "exnhs"}], "has no tag trust-blueprints-storage-account"),
    ({"unexpected": "shape"}, "has no tag trust-blueprints-storage-account"),
    ([{"name": "trust-blueprints-storage-account", "value": "Not_An_Account"}], "'Not_An_Account' is not a storage"),
])
def test_a_missing_or_malformed_account_tag_is_an_error_naming_the_tag(tags, message):
    with pytest.raises(RuntimeError, match=message):
        server_commands.account_in_tags(tags)


class _Metadata(http.server.BaseHTTPRequestHandler):
    """The instance metadata service's tag list, as Azure answers it (only with Metadata: true)."""

    tags: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        if self.headers.get("Metadata") != "true" or not self.path.startswith("/metadata/instance/compute/tagsList"):
            self.send_error(400)
            return
        body = json.dumps(self.tags).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_apply_asks_the_metadata_service_for_the_tag(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    _Metadata.tags = [{"name": server_commands.STORAGE_ACCOUNT_TAG, "value": ACCOUNT}]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setattr(server_commands, "IMDS_TAGS", server_commands.IMDS_TAGS.replace(
            "http://169.254.169.254", address))
        assert server_commands._storage_account() == ACCOUNT
    finally:
        server.shutdown()
