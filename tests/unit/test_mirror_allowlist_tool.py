"""mirror-allowlist, the command on the mirror: checking lists, reporting changes, what each service gets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from validation.schema import CRAN_NAME_PATTERN, NPM_NAME_PATTERN, PYPI_NAME_PATTERN

TOOL = Path(__file__).resolve().parents[2] / "blueprints" / "package_mirror" / "files" / "mirror-allowlist.py"
PATTERNS = {"pypi": PYPI_NAME_PATTERN, "npm": NPM_NAME_PATTERN, "cran": CRAN_NAME_PATTERN}


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("mirror_allowlist", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accepts_names_and_pypi_version_specifiers(tool):
    lists = tool.check_allowlists({"pypi": ["numpy", "pandas>=2,<3"], "npm": ["@types/node", "left-pad"],
                                   "cran": ["DBI"]}, PATTERNS, "f.yaml")
    assert lists == {"pypi": ["numpy", "pandas>=2,<3"], "npm": ["@types/node", "left-pad"], "cran": ["DBI"]}


def test_a_missing_key_means_an_empty_list(tool):
    assert tool.check_allowlists({"cran": ["glue"]}, PATTERNS, "f.yaml")["pypi"] == []


@pytest.mark.parametrize(("document", "message"), [
    ({"pypi": ["bad name"]}, "pypi[0] 'bad name' is not a valid pypi package name"),
    ({"npm": ["Left-Pad"]}, "npm[0] 'Left-Pad' is not a valid npm package name"),
    ({"cran": ["2fast"]}, "cran[0] '2fast' is not a valid cran package name"),
    ({"pypi": ["numpy>=", "x"]}, "pypi[0] 'numpy>=' has a version specifier"),
    ({"pypi": ["numpy\n*"]}, "pypi[0] 'numpy\\n*'"),
    ({"pypi": ["Pandas", "pandas"]}, "pypi[1] 'pandas' repeats 'Pandas'"),
    ({"rubygems": ["rails"]}, "unknown key(s) rubygems"),
    ({"npm": "left-pad"}, "npm must be a list"),
    (["numpy"], "must be a mapping"),
    ({"cran": ['x"; return 200; #']}, "is not a valid cran package name"),
])
def test_refuses_bad_entries_naming_each(tool, document, message):
    with pytest.raises(tool.BadInputError, match=None) as error:
        tool.check_allowlists(document, PATTERNS, "f.yaml")
    assert message in str(error.value)


def test_reports_added_removed_and_changed_per_ecosystem(tool):
    old = {"pypi": ["numpy", "pandas"], "npm": ["left-pad"], "cran": ["DBI"]}
    new = {"pypi": ["numpy", "pandas<3", "six"], "npm": [], "cran": ["DBI"]}
    assert tool.describe_changes(old, new) == [
        "pypi: added 1: six; changed 1: pandas -> pandas<3",
        "npm: removed 1: left-pad",
        "cran: no change",
    ]


def test_nginx_maps_allow_only_listed_names_in_curated_mode(tool):
    curated = tool.nginx_map(["numpy"], "curated").splitlines()
    assert "default 0;" in curated and '"numpy" 1;' in curated and '"-" 1;' in curated
    assert "default 1;" in tool.nginx_map([], "open").splitlines()


def test_pypi_names_reach_nginx_in_the_form_pip_requests(tool):
    settings = {"mode": "curated", "upstreams": {"pypi": "https://pypi.org/simple", "npm": "https://registry.npmjs.org",
                                                 "cran": "https://cloud.r-project.org"}}
    files = tool.service_files(settings, {"pypi": ["Scikit_Learn>=1.5"], "npm": [], "cran": []})
    assert '"scikit-learn" 1;' in files[tool.NGINX_DIR / "pypi-allowed.map"]


def test_cran_upstream_becomes_a_verified_https_proxy(tool):
    text = tool.cran_proxy("https://cloud.r-project.org")
    assert 'set $cran_upstream "cloud.r-project.org";' in text
    assert "proxy_pass https://$cran_upstream;" in text
    assert "resolver 127.0.0.53 valid=300s;" in text
    assert "rewrite ^/cran/(.*)$ /$1 break;" in text
    assert "proxy_ssl_verify on;" in text
    local = tool.cran_proxy("http://127.0.0.1:8089/cran/")
    assert 'set $cran_upstream "127.0.0.1:8089";' in local and "rewrite ^/cran/(.*)$ /cran/$1 break;" in local


def test_verdaccio_fetches_only_allowlisted_packages_in_curated_mode(tool):
    config = yaml.safe_load(tool.verdaccio_config(["left-pad"], "curated", "https://registry.npmjs.org"))
    assert config["packages"]["left-pad"]["proxy"] == "npmjs"
    assert "proxy" not in config["packages"]["**"]
    assert config["auth"]["htpasswd"]["max_users"] == -1
    opened = yaml.safe_load(tool.verdaccio_config([], "open", "https://registry.npmjs.org"))
    assert opened["packages"]["**"]["proxy"] == "npmjs"


def test_devpi_serves_only_listed_projects_in_curated_mode(tool):
    assert tool.devpi_constraints(["numpy", "pandas<3"], "curated") == ["numpy", "pandas<3", "*"]
    assert tool.devpi_constraints(["numpy"], "open") == ["numpy"]


def test_bad_command_line_exits_2_with_usage(tool, capsys):
    assert tool.main(["apply"]) == 2
    assert "mirror-allowlist apply FILE" in capsys.readouterr().err


def test_bad_file_exits_2_and_changes_nothing(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tool, "STATE_DIR", tmp_path)
    monkeypatch.setattr(tool, "SETTINGS", tmp_path / "settings.json")
    monkeypatch.setattr(tool, "CURRENT", tmp_path / "allowlist.yaml")
    (tmp_path / "settings.json").write_text(json.dumps({"mode": "curated", "name_patterns": PATTERNS, "upstreams": {}}))
    (tmp_path / "allowlist.yaml").write_text("pypi: [numpy]\n")
    bad = tmp_path / "new.yaml"
    bad.write_text("pypi: [numpy, 'no spaces allowed']\n")
    assert tool.main(["apply", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "'no spaces allowed' is not a valid pypi package name" in err and "nothing was changed" in err
    assert (tmp_path / "allowlist.yaml").read_text() == "pypi: [numpy]\n"


def test_nginx_resolves_with_the_machines_own_nameserver(tool, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example\nnameserver 10.40.0.2\nnameserver 10.40.0.3\n")
    assert tool.system_nameserver(resolv) == "10.40.0.2"
    resolv.write_text("nameserver fd00::53\n")
    assert tool.system_nameserver(resolv) == "[fd00::53]"
    assert tool.system_nameserver(tmp_path / "missing") == "127.0.0.53"


def test_an_apply_waits_for_a_restarted_service_to_answer(tool):
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Any HTTP answer (here a 501) means it is up again.
        tool.wait_until_answering(f"http://127.0.0.1:{server.server_port}/-/ping", "verdaccio", seconds=5)
    finally:
        server.shutdown()
        server.server_close()


def test_a_restarted_service_that_never_answers_is_named(tool):
    with pytest.raises(tool.ServiceRefusedError, match=r"verdaccio did not answer at .* within 1 s"):
        tool.wait_until_answering("http://127.0.0.1:9/-/ping", "verdaccio", seconds=1, pause=0.1)
