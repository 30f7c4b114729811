"""The VM program that applies a VM's user data (blueprints/templates/trust-blueprints-settings.py),
run here against a temporary root: it refuses what it must, writes files atomically with their
modes, runs each apply program only when its files changed, and fetches from a metadata service
that speaks Azure's protocol (base64 text, only with the Metadata header)."""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest

from blueprints.cloud_init import SETTINGS_PROGRAM
from blueprints.topology import plan_machines
from blueprints.vm_settings import settings_document


@pytest.fixture
def program(tmp_path, monkeypatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_program_under_test", SETTINGS_PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    monkeypatch.setattr(module, "ROOT", root)
    monkeypatch.setattr(module, "STATE_DIR", state)
    log = tmp_path / "hooks.log"
    # Each hook appends its name to a log, so a test sees which ran and in what order.
    monkeypatch.setattr(module, "HOOKS", {name: ["/bin/sh", "-c", f"echo {name} >> {log}"] for name in module.HOOKS})
    module.hook_log = log
    return module


def _document(files: list[dict[str, Any]], hooks: list[str] | None = None, machine: str = "git") -> dict[str, Any]:
    full = [{"mode": "0644", "owner": "root", "group": "root", "hooks": [], **entry} for entry in files]
    if hooks is None:
        hooks = list(dict.fromkeys(hook for entry in full for hook in entry["hooks"]))
    return {"format": "trust-blueprints-settings", "version": 1, "machine": machine, "role": "git_server",
            "hooks": hooks, "files": full}


def _raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _ran(program: ModuleType) -> list[str]:
    log = program.hook_log
    return log.read_text().split() if log.exists() else []


GIT_SETTINGS = {"path": "/etc/trust-blueprints/git-server.yaml", "content": "{}\n", "hooks": ["git-server-apply"]}
SEED = {"path": "/etc/trust-blueprints/package-requests-seed.json", "content": "{}\n", "hooks": ["git-server-apply"]}
KEYS = {"path": "/home/trustadmin/.ssh/authorized_keys", "mode": "0600", "content": "ssh-ed25519 AAAA one\n"}


def test_every_rendered_document_passes_the_programs_own_check(program, example_config):
    for machine in plan_machines(example_config):
        document = program.check_document(settings_document(example_config, machine))
        assert document["machine"] == machine.name
        assert set(document["hooks"]) <= set(program.HOOKS)


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "cloud-config"}, "format: 'cloud-config'"),
    ({"version": 2}, "version: 2; this program reads versions 1"),
    ({"hooks": ["rm -rf /"]}, "hooks: 'rm -rf /' is not one of"),
    ({"extra": 1}, "extra: not a known key"),
    ({"files": [{**GIT_SETTINGS, "path": "/etc/passwd"}]}, "'/etc/passwd': is outside what settings may write"),
    ({"files": [{**GIT_SETTINGS, "path": "/etc/trust-blueprints/secrets/tls.key"}]},
     "secrets come from Key Vault, never from user data"),
    ({"files": [{**GIT_SETTINGS, "path": "/etc/trust-blueprints/../shadow"}]}, "must be a plain absolute path"),
    ({"files": [{**GIT_SETTINGS, "path": "/home/x/.ssh/../../root/.ssh/authorized_keys"}]},
     "must be a plain absolute path"),
    ({"files": [{**GIT_SETTINGS, "mode": "4755"}]}, "mode '4755': must be an octal string"),
    ({"files": [{**GIT_SETTINGS, "owner": "root;id"}]}, "owner 'root;id': must be an account name"),
    ({"files": [{**GIT_SETTINGS, "hooks": ["jupyterhub"]}]}, "each must be listed in the document's hooks"),
    ({"files": [GIT_SETTINGS, GIT_SETTINGS]}, "listed twice"),
])
def test_a_bad_document_is_refused_with_the_field_named(program, change, message):
    document = _document([GIT_SETTINGS]) | change
    if "files" in change:
        document["files"] = [{"mode": "0644", "owner": "root", "group": "root", "hooks": [], **entry}
                             for entry in change["files"]]
    with pytest.raises(program.DocumentError, match=None) as refused:
        program.check_document(_raw(document))
    assert message in str(refused.value)


def test_first_run_writes_every_file_with_its_mode_and_runs_each_hook_once(program):
    document = _document([KEYS, GIT_SETTINGS, SEED])
    assert program.apply(program.check_document(_raw(document))) == 0
    keys = program.ROOT / "home/trustadmin/.ssh/authorized_keys"
    assert keys.read_text() == KEYS["content"]
    assert keys.stat().st_mode & 0o777 == 0o600
    assert keys.parent.stat().st_mode & 0o777 == 0o700  # a new ~/.ssh stays private
    assert (program.ROOT / "etc/trust-blueprints/git-server.yaml").stat().st_mode & 0o777 == 0o644
    assert _ran(program) == ["git-server-apply"]
    assert not list(keys.parent.glob(".authorized_keys.*")), "a temporary file was left behind"


def test_nothing_changed_runs_nothing(program):
    document = program.check_document(_raw(_document([KEYS, GIT_SETTINGS])))
    program.apply(document)
    program.apply(document)
    assert _ran(program) == ["git-server-apply"]


def test_a_changed_file_runs_only_the_hooks_it_feeds(program):
    program.apply(program.check_document(_raw(_document([KEYS, GIT_SETTINGS]))))
    new_keys = {**KEYS, "content": KEYS["content"] + "ssh-ed25519 AAAA two\n"}
    program.apply(program.check_document(_raw(_document([new_keys, GIT_SETTINGS]))))
    assert _ran(program) == ["git-server-apply"]  # the keys feed no hook
    assert (program.ROOT / "home/trustadmin/.ssh/authorized_keys").read_text().count("ssh-ed25519") == 2
    program.apply(program.check_document(_raw(_document([new_keys, {**GIT_SETTINGS, "content": "{\"a\": 1}\n"}]))))
    assert _ran(program) == ["git-server-apply", "git-server-apply"]


def test_a_file_edited_by_hand_is_put_back_and_its_hook_runs_again(program):
    document = program.check_document(_raw(_document([GIT_SETTINGS])))
    program.apply(document)
    target = program.ROOT / "etc/trust-blueprints/git-server.yaml"
    target.write_text("edited by hand\n")
    target.chmod(0o666)
    program.apply(document)
    assert target.read_text() == GIT_SETTINGS["content"] and target.stat().st_mode & 0o777 == 0o644
    assert _ran(program) == ["git-server-apply", "git-server-apply"]


def test_a_file_no_longer_listed_is_removed_and_its_hook_runs(program):
    user_key = {"path": "/etc/ssh/trust-blueprints-keys/jbloggs", "content": "ssh-ed25519 AAAA j\n",
                "hooks": ["gateway-jump-users"]}
    users = {"path": "/etc/trust-blueprints/gateway/jump-users", "content": "jbloggs\n",
             "hooks": ["gateway-jump-users"]}
    program.apply(program.check_document(_raw(_document([users, user_key], machine="gateway"))))
    program.apply(program.check_document(_raw(_document([{**users, "content": ""}], hooks=["gateway-jump-users"],
                                                        machine="gateway"))))
    assert not (program.ROOT / "etc/ssh/trust-blueprints-keys/jbloggs").exists()
    assert _ran(program) == ["gateway-jump-users", "gateway-jump-users"]


def test_a_failed_hook_fails_the_run_and_is_tried_again(program, monkeypatch):
    document = program.check_document(_raw(_document([GIT_SETTINGS])))
    monkeypatch.setitem(program.HOOKS, "git-server-apply", ["/bin/sh", "-c", "echo refused >&2; exit 3"])
    assert program.apply(document) == 1
    monkeypatch.setitem(program.HOOKS, "git-server-apply", ["/bin/sh", "-c", f"echo fixed >> {program.hook_log}"])
    assert program.apply(document) == 0
    assert _ran(program) == ["fixed"]
    assert program.apply(document) == 0
    assert _ran(program) == ["fixed"]


def test_files_only_writes_now_and_leaves_the_hooks_to_the_next_run(program):
    document = program.check_document(_raw(_document([KEYS, GIT_SETTINGS])))
    assert program.apply(document, run_hooks=False) == 0
    assert (program.ROOT / "home/trustadmin/.ssh/authorized_keys").read_text() == KEYS["content"]
    assert _ran(program) == []
    assert program.apply(document) == 0
    assert _ran(program) == ["git-server-apply"]


def test_show_changes_nothing(program):
    document = program.check_document(_raw(_document([GIT_SETTINGS])))
    assert program.apply(document, dry_run=True) == 0
    assert not (program.ROOT / "etc/trust-blueprints/git-server.yaml").exists()
    assert _ran(program) == []


class _MetadataService(BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Metadata")))
        if self.headers.get("Metadata") != "true":
            status, body = 400, b"Required metadata header not specified"
        else:
            status, body = type(self).answers.pop(0) if type(self).answers else (500, b"")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def metadata(program, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataService)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    path = "/metadata/instance/compute/userData?api-version=2021-01-01&format=text"
    assert f"http://169.254.169.254{path}" == program.USER_DATA_URL
    monkeypatch.setattr(program, "USER_DATA_URL", f"http://127.0.0.1:{server.server_port}{path}")
    _MetadataService.answers, _MetadataService.seen = [], []
    yield _MetadataService
    server.shutdown()


def test_fetch_decodes_azures_base64_answer_and_sends_the_metadata_header(program, metadata):
    raw = _raw(_document([GIT_SETTINGS]))
    metadata.answers = [(200, base64.b64encode(raw))]
    assert program.fetch(delays=()) == raw
    assert metadata.seen == [("/metadata/instance/compute/userData?api-version=2021-01-01&format=text", "true")]


def test_fetch_retries_within_its_bound_then_gives_up(program, metadata, capsys):
    raw = _raw(_document([GIT_SETTINGS]))
    metadata.answers = [(503, b""), (200, base64.b64encode(raw))]
    assert program.fetch(delays=(0, 0)) == raw
    assert "waiting for this VM's user data from the instance metadata service (HTTP 503)" in capsys.readouterr().out
    metadata.answers = [(503, b"")] * 3
    with pytest.raises(program.FetchError, match=r"gave up .* after 3 tries \(HTTP 503\)"):
        program.fetch(delays=(0, 0))


def test_empty_user_data_is_an_error_naming_the_cause(program, metadata):
    metadata.answers = [(200, b"")]
    with pytest.raises(program.FetchError, match="this VM has no user data"):
        program.fetch(delays=())


def test_now_refuses_settings_meant_for_another_vm(program, metadata, monkeypatch, capsys):
    metadata.answers = [(200, base64.b64encode(_raw(_document([GIT_SETTINGS], machine="mirror"))))]
    monkeypatch.setattr(program.socket, "gethostname", lambda: "git")
    monkeypatch.setattr(program, "FETCH_DELAYS", ())
    assert program.main(["--now"]) == 2
    assert "the settings are for 'mirror', this VM is 'git'" in capsys.readouterr().out
    assert _ran(program) == []


def test_now_applies_what_the_metadata_service_serves(program, metadata, monkeypatch):
    metadata.answers = [(200, base64.b64encode(_raw(_document([GIT_SETTINGS]))))]
    monkeypatch.setattr(program.socket, "gethostname", lambda: "git.exnhs-dev.internal")
    monkeypatch.setattr(program, "FETCH_DELAYS", ())
    assert program.main(["--now"]) == 0
    assert _ran(program) == ["git-server-apply"]


def test_check_and_usage_exit_codes(program, tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_bytes(_raw(_document([GIT_SETTINGS])))
    bad.write_bytes(b"#cloud-config\n")
    assert program.main(["--check", str(good)]) == 0
    assert program.main(["--check", str(bad)]) == 2
    assert program.main([]) == 2
    assert program.main(["--now", "--extra"]) == 2

