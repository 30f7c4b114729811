"""The mirror's package cache outlives a lab, as it outlives a rebuilt VM on its data disk."""

from __future__ import annotations

import os

from lab import host_caches


def test_a_kept_cache_comes_back_in_the_next_machine_of_the_same_base(tmp_path):
    cache_root, upper = tmp_path / "cache", tmp_path / "old-upper"
    deb = upper / "var/cache/apt-cacher-ng/debrep/pool/main/g/git/git_2.47_amd64.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"package")
    os.chmod(deb, 0o640)
    assert host_caches.keep("package_mirror", upper, "base-1", cache_root) == ["/var/cache/apt-cacher-ng"]

    new_upper = tmp_path / "new-upper"
    assert host_caches.restore("package_mirror", new_upper, "base-1", cache_root) == ["/var/cache/apt-cacher-ng"]
    restored = new_upper / "var/cache/apt-cacher-ng/debrep/pool/main/g/git/git_2.47_amd64.deb"
    assert restored.read_bytes() == b"package" and (restored.stat().st_mode & 0o777) == 0o640
    assert host_caches.restore("package_mirror", tmp_path / "other", "base-2", cache_root) == []
    assert host_caches.restore("analytics", tmp_path / "other", "base-1", cache_root) == []


def test_nothing_is_kept_from_an_empty_cache(tmp_path):
    (tmp_path / "upper/var/cache/apt-cacher-ng").mkdir(parents=True)
    assert host_caches.keep("package_mirror", tmp_path / "upper", "base-1", tmp_path / "cache") == []


def test_a_cache_from_another_role_layer_is_not_used(tmp_path):
    """A package added to a role rebuilds its layer on the same base, and may shift the service's
    account id: the kept cache would then belong to someone else."""
    upper = tmp_path / "upper"
    (upper / "var/cache/apt-cacher-ng").mkdir(parents=True)
    (upper / "var/cache/apt-cacher-ng/index").write_text("kept")
    cache_root = tmp_path / "cache"
    before = host_caches.lower_key("base-1", "/layers/package_mirror-aaaa")
    assert host_caches.keep("package_mirror", upper, before, cache_root) == ["/var/cache/apt-cacher-ng"]
    after = host_caches.lower_key("base-1", "/layers/package_mirror-bbbb")
    assert host_caches.restore("package_mirror", tmp_path / "new", after, cache_root) == []
    assert host_caches.restore("package_mirror", tmp_path / "same", before, cache_root) == ["/var/cache/apt-cacher-ng"]
    assert host_caches.lower_key("base-1") == "base-1"
