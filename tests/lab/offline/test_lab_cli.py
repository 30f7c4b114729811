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


# --- `lab test`: the groups side by side, then the tests that run alone ---------------------------

@pytest.mark.parametrize(("arguments", "message"), [
    (["--workers", "0"], "--workers 0: must be a whole number from 1 to 16"),
    (["--workers", "17"], "--workers 17: must be a whole number from 1 to 16"),
    (["--workers", "3", "--", "-m", "lab"], "select with -k instead"),
    (["--workers", "2", "--", "-mlab"], "select with -k instead"),
])
def test_lab_test_refuses_bad_arguments_with_exit_2(monkeypatch, capsys, arguments, message):
    ran = []
    monkeypatch.setattr("subprocess.run", lambda *args, **kwargs: ran.append(args))
    assert cli.main(["lab", "test", *arguments]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert ran == []


def _lab_test(monkeypatch, arguments, statuses):
    import subprocess

    from lab import machines

    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(machines, "running_lab", lambda: (None, {}))
    calls = []

    def fake_run(argv, **kwargs):
        calls.append((argv, kwargs["env"].get("BLUEPRINTS_LAB_REQUIRED")))
        return subprocess.CompletedProcess(argv, statuses[len(calls) - 1])

    monkeypatch.setattr(subprocess, "run", fake_run)
    return cli.main(["lab", "test", *arguments]), calls


def test_lab_test_runs_the_groups_side_by_side_then_the_tests_alone(monkeypatch):
    status, calls = _lab_test(monkeypatch, ["--workers", "3", "--", "-k", "gateway", "--durations=5"], [0, 0])
    assert status == 0
    (together, required_1), (alone, required_2) = calls
    assert required_1 == required_2 == "1"
    assert together[-12:] == ["tests/lab/machines", "tests/acceptance", "-n", "3", "--dist", "loadscope",
                              "--no-loadscope-reorder", "-m", "not lab_alone", "-k", "gateway", "--durations=5"]
    assert alone[-7:] == ["tests/lab/machines", "tests/acceptance", "-m", "lab_alone", "-k", "gateway",
                          "--durations=5"]


@pytest.mark.parametrize(("statuses", "expected"), [([1, 0], 1), ([0, 1], 1), ([5, 0], 0), ([0, 5], 0),
                                                     ([5, 5], 5), ([2, 1], 2)])
def test_lab_test_fails_when_either_part_fails(monkeypatch, statuses, expected):
    assert _lab_test(monkeypatch, ["--workers", "2"], statuses)[0] == expected


def test_lab_test_with_one_worker_is_one_run_and_acceptance_only_narrows_it(monkeypatch):
    status, calls = _lab_test(monkeypatch, ["--acceptance-only", "--", "-x"], [0])
    assert status == 0
    [(argv, _)] = calls
    assert "tests/lab/machines" not in argv and argv[-2:] == ["tests/acceptance", "-x"]
    assert "-n" not in argv
