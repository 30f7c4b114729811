"""The boot step fetching a VM's secrets from Key Vault waits for grants, says which, and gives up loudly.

The step is taken from a rendered user-data, as the VM runs it, and run here with Python's HTTP
client answered by a stand-in (instance metadata and Key Vault refusing, then granting) and a
clock that does not really sleep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.secrets import VAULT_NAME_TAG, secret_files
from blueprints.topology import plan_machines

SECRETS_DIR = "/etc/trust-blueprints/secrets"

# Runs the step's Python with urlopen answered from a table: each URL fragment maps to the
# HTTP codes it returns, in order (the last one repeats); 200 answers with a token or a value.
HARNESS = textwrap.dedent('''
    import io, json, sys, time, urllib.error, urllib.request
    answers = json.loads(sys.argv[1])
    calls = {}
    def urlopen(request, timeout=None):
        url = request.full_url
        if "tagsList" in url and "tagsList" not in answers:  # the VM's tags name the vault
            return io.BytesIO(json.dumps([{"name": "trust-blueprints-key-vault", "value": "kv-test"}]).encode())
        key = next(k for k in answers if k in url)
        codes = answers[key]
        code = codes[min(calls.get(key, 0), len(codes) - 1)]
        calls[key] = calls.get(key, 0) + 1
        if code == "down":
            raise urllib.error.URLError("connection refused")
        if code != 200:
            raise urllib.error.HTTPError(url, code, "refused", {}, io.BytesIO(b"{}"))
        body = {"access_token": "token"} if "metadata" in url else {"value": "value of " + key}
        return io.BytesIO(json.dumps(body).encode())
    urllib.request.urlopen = urlopen
    slept = []
    time.sleep = slept.append
    script = open(sys.argv[2]).read()
    sys.argv = ["-"] + sys.argv[3:]
    try:
        exec(compile(script, "fetch", "exec"), {"__name__": "__main__"})
    finally:
        print("SLEPT", sum(slept))
''')


@pytest.fixture(scope="module")
def gateway(example_config):
    machine = next(m for m in plan_machines(example_config) if m.role == "gateway")
    document = yaml.safe_load(render_user_data(example_config, machine))
    step = next(command for command in document["bootcmd"] if "<<'FETCH'" in command)
    _, _, rest = step.partition("<<'FETCH' || exit 1\n")
    script = rest.partition("\nFETCH\n")[0]
    return machine, script


def _run(tmp_path, script: str, machine, answers: dict[str, list]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "fetch.py").write_text(script.replace(SECRETS_DIR, str(tmp_path / "secrets")))
    (tmp_path / "harness.py").write_text(HARNESS)
    pairs = [part for pair in secret_files(machine) for part in pair]
    return subprocess.run([sys.executable, str(tmp_path / "harness.py"), json.dumps(answers),
                           str(tmp_path / "fetch.py"), VAULT_NAME_TAG, *pairs],
                          capture_output=True, text=True, timeout=60, check=False)


def test_every_file_the_vm_reads_is_fetched_once_granted(tmp_path, gateway):
    machine, script = gateway
    result = _run(tmp_path, script, machine, {
        "metadata": ["down", 200],  # the identity is not ready on the first try
        "gateway-oidc-client-secret": [404, 403, 200],  # not set yet, then not granted yet
        "vault.azure.net": [200],
    })
    assert result.returncode == 0, result.stderr
    written = {path.name: path.read_text() for path in (tmp_path / "secrets").iterdir()}
    assert sorted(written) == sorted(file for file, _ in secret_files(machine))
    assert written["gateway-oidc-client-secret"] == "value of gateway-oidc-client-secret\n"
    assert "waiting for this VM's managed identity token" in result.stdout
    waits = [line for line in result.stdout.splitlines() if "secret gateway-oidc-client-secret" in line]
    assert ["HTTP 404" in waits[0], "HTTP 403" in waits[1]] == [True, True], result.stdout
    assert "gateway-oidc-client-secret fetched from Key Vault kv-test" in result.stdout


def test_a_secret_never_granted_stops_the_boot_after_the_bound_naming_it(tmp_path, gateway):
    machine, script = gateway
    result = _run(tmp_path, script, machine, {"metadata": [200], "gateway-tls-key": [403], "vault.azure.net": [200]})
    assert result.returncode != 0
    assert "gave up on Key Vault kv-test secret gateway-tls-key" in result.stderr
    slept = float(result.stdout.rsplit("SLEPT", 1)[1])
    assert 1800 <= slept <= 1800 + 60  # bounded: half an hour of backoff, never more than a minute apart
    assert not (tmp_path / "secrets" / "tls.key").exists()


def test_files_already_there_are_not_fetched_again(tmp_path, gateway):
    machine, script = gateway
    (tmp_path / "secrets").mkdir()
    for file, _ in secret_files(machine):
        (tmp_path / "secrets" / file).write_text("kept\n")
    result = _run(tmp_path, script, machine, {"metadata": [500], "vault.azure.net": [500]})
    assert result.returncode == 0, result.stderr  # nothing missing: not even the metadata service is asked
    assert "fetched" not in result.stdout
    assert {p.read_text() for p in (tmp_path / "secrets").iterdir()} == {"kept\n"}


def test_a_vm_without_the_vault_tag_waits_for_it_naming_the_tag(tmp_path, gateway):
    machine, script = gateway
    result = _run(tmp_path, script, machine, {"tagsList": [200], "metadata": [200], "vault.azure.net": [200]})
    assert result.returncode != 0
    assert f"gave up on this VM's tag {VAULT_NAME_TAG}" in result.stderr
