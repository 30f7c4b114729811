from lab.egress_trust import install_host_anchors


def test_host_anchors_are_copied_into_the_machine_root(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "proxy.crt").write_text("PEM")
    (host / "notes.txt").write_text("not a certificate")
    root = tmp_path / "root"
    assert install_host_anchors(root, host) == ["proxy.crt"]
    assert (root / "usr/local/share/ca-certificates/lab-host-proxy.crt").read_text() == "PEM"


def test_nothing_is_written_when_the_host_has_no_anchors(tmp_path):
    (tmp_path / "host").mkdir()
    assert install_host_anchors(tmp_path / "root", tmp_path / "host") == []
    assert not (tmp_path / "root").exists()
