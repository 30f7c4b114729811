"""Each lab machine runs in cgroups of its own, and `lab down` removes them."""

from __future__ import annotations

from pathlib import Path

from lab import machines


def test_supervisor_moves_itself_into_a_cgroup_named_after_the_machine_before_booting():
    own, boot = machines.SUPERVISOR.index("cgroup.procs"), machines.SUPERVISOR.index("systemd-nspawn")
    assert own < boot
    assert f'cgroup="{machines.CGROUP_PREFIX}$0"' in machines.SUPERVISOR


def test_remove_cgroups_removes_the_machines_trees_innermost_first_and_nothing_else(monkeypatch, tmp_path):
    unified, named = tmp_path / "unified", tmp_path / "systemd"
    for root in (unified, named):
        (root / "session" / "trust-blueprints-lab-mirror" / "payload" / "system.slice" / "nginx.service").mkdir(
            parents=True)
        (root / "session" / "trust-blueprints-lab-mirror" / "supervisor").mkdir()
        (root / "session" / "trust-blueprints-lab-git").mkdir()
        (root / "session" / "other-service").mkdir()
    monkeypatch.setattr(machines, "CGROUP_ROOTS", (unified, named, tmp_path / "absent"))

    removed = machines.remove_cgroups(["mirror"])

    assert removed == [str(unified / "session" / "trust-blueprints-lab-mirror"),
                       str(named / "session" / "trust-blueprints-lab-mirror")]
    for root in (unified, named):
        assert sorted(p.name for p in (root / "session").iterdir()) == ["other-service", "trust-blueprints-lab-git"]
    assert machines.remove_cgroups(["mirror"]) == []


def test_a_cgroup_still_in_use_is_left_and_not_reported(monkeypatch, tmp_path):
    busy = tmp_path / "unified" / "trust-blueprints-lab-mirror"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text("4242\n")  # a plain directory with a file will not rmdir, like a busy cgroup
    monkeypatch.setattr(machines, "CGROUP_ROOTS", (tmp_path / "unified",))
    assert machines.remove_cgroups(["mirror"]) == []
    assert Path(busy).exists()
