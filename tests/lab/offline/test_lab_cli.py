"""`blueprints lab`: refusals are clear and exit 2 before anything on the host changes."""

from __future__ import annotations

import pytest

from cli import main as cli
from lab import lifecycle


def test_lab_group_is_registered(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lab", "--help"])
    out = capsys.readouterr().out
    for command in ("up", "status", "ssh", "logs", "test", "reboot", "down"):
        assert command in out


def test_ssh_help_says_it_is_not_ssh(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lab", "ssh", "--help"])
    assert "nsenter" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["up"], ["down"], ["ssh", "mirror"], ["logs", "mirror"], ["test"],
                                     ["reboot"], ["reboot", "mirror"]])
def test_not_root_is_refused_with_exit_2(monkeypatch, capsys, command):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["lab", *command]) == cli.EXIT_USAGE
    assert "root" in capsys.readouterr().err


def test_missing_tools_are_named_with_their_package(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda tool: None if tool in ("debootstrap", "dnsmasq") else "/usr/bin/x")
    assert cli.main(["lab", "up"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "debootstrap (Debian package debootstrap)" in err
    assert "dnsmasq (Debian package dnsmasq-base)" in err
    assert "make host-deps" in err


def test_second_lab_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda tool: "/usr/bin/x")
    state = tmp_path / "example"
    state.mkdir()
    (state / "lab.json").write_text('{"stack_file": "/somewhere/example.yaml", "machines": {}}')
    monkeypatch.setattr("lab.layout.STATE_ROOT", tmp_path)
    assert cli.main(["lab", "up"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "already running" in err and "lab down" in err


def test_boot_order_puts_the_mirror_first(example_config):
    from blueprints.topology import plan_machines

    groups = lifecycle.boot_order(plan_machines(example_config))
    assert [m.name for m in groups[0]] == ["mirror"]
    assert {m.name for m in groups[1]} == {"gateway", "git", "analytics-1", "analytics-2"}


def test_timeout_must_be_positive(capsys):
    assert cli.main(["lab", "up", "--timeout", "0"]) == cli.EXIT_USAGE
    assert "--timeout 0: must be" in capsys.readouterr().err


def test_together_boots_every_machine_at_once(example_config):
    from blueprints.topology import plan_machines

    machines = plan_machines(example_config)
    assert lifecycle.boot_order(machines, together=True) == [machines]


def test_concurrent_lab_commands_are_refused(monkeypatch, capsys, tmp_path):
    from lab import layout

    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda tool: "/usr/bin/x")
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path)
    with layout.host_lock():
        assert cli.main(["lab", "up"]) == cli.EXIT_USAGE
        assert "another `blueprints lab up` or `lab down` is running" in capsys.readouterr().err
        assert cli.main(["lab", "down"]) == cli.EXIT_USAGE


def test_reboot_timeout_must_be_positive(capsys):
    assert cli.main(["lab", "reboot", "--timeout", "-5"]) == cli.EXIT_USAGE
    assert "--timeout -5: must be a number of seconds above 0" in capsys.readouterr().err


def test_reboot_without_a_lab_says_how_to_start_one(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("lab.layout.STATE_ROOT", tmp_path)
    assert cli.main(["lab", "reboot", "mirror"]) == cli.EXIT_USAGE
    assert "no lab on this host" in capsys.readouterr().err
