"""Each analyst's server on a web origin of its own: the session-theft attack fails.

Analyst A serves a page of their own from their own Jupyter server (a static folder added in
their own server's configuration, as any analyst may). B signs in at the gateway in a real
browser, opens their own JupyterLab, then follows A's link. The page reads every cookie it can
see, tries to read B's server, the hub and the gateway with B's browser, and tries to make B's
server create a file and a session. The gateway's session cookie must not be there, every read
must fail, and B's server must be unchanged. A's origin, B's origin and the gateway's differ.

Needs a running lab (or a deployment with a browser on the client side), like test_gateway.py.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from blueprints.analytics.origins import own_origins, user_host
from blueprints.topology import private_dns_zone

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
HUB_PORT = 8000
# The victim is the lab identity provider's standard member; the attacker is another mapped account.
VICTIM = "analyst"
MARKER = "attack-marker"
GATEWAY_COOKIES = ("__Host-gateway-session", "mod_auth_openidc", "jupyterhub-session-id", "jupyterhub-hub-login")

ATTACK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Quarterly figures</title></head>
<body><pre id="result"></pre>
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  const target = params.get("target"), hub = params.get("hub"), gateway = params.get("gateway");
  const marker = params.get("marker");
  const found = {origin: location.origin, cookies: document.cookie, reads: {}, writes: {}, frame: ""};
  for (const url of [target + "api/contents", target + "api/sessions", target + "lab", hub + "hub/api/user",
                     gateway]) {
    try {
      const answer = await fetch(url, {credentials: "include"});
      found.reads[url] = "read HTTP " + answer.status + ": " + (await answer.text()).slice(0, 300);
    } catch (error) { found.reads[url] = "failed: " + error; }
  }
  const writes = {
    "file": [target + "api/contents/" + marker + ".txt",
             {method: "PUT", credentials: "include", headers: {"Content-Type": "application/json"},
              body: JSON.stringify({type: "file", format: "text", content: "planted"})}],
    "session": [target + "api/sessions",
                {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"},
                 body: JSON.stringify({path: marker + ".ipynb", type: "notebook", kernel: {name: "python3"}})}],
  };
  for (const [name, [url, init]] of Object.entries(writes)) {
    try { const answer = await fetch(url, init); found.writes[name] = "sent: " + answer.type + " " + answer.status; }
    catch (error) { found.writes[name] = "failed: " + error; }
  }
  // Framing B's JupyterLab: on the same origin this page could script it.
  found.frame = await new Promise((resolve) => {
    const frame = document.createElement("iframe");
    const give = () => { try { resolve("scripted: " + frame.contentWindow.document.cookie); }
                         catch (error) { resolve("blocked: " + error.name); } };
    frame.onload = give;
    setTimeout(give, 15000);
    frame.src = target + "lab";
    document.body.appendChild(frame);
  });
  document.getElementById("result").textContent = JSON.stringify(found);
})();
</script></body></html>
"""


def _attacker(lab: Any) -> str:
    """A mapped account other than the victim and the hub's admins, whose name is a plain DNS label."""
    identity = (lab.config["roles"].get("gateway") or {}).get("identity") or {}
    admins = set((lab.config["roles"].get("analytics") or {}).get("admin_users", []))
    for entry in identity.get("accounts", []):
        name = entry["account"]
        if name != VICTIM and name not in admins and name.replace("-", "").isalnum():
            return name
    pytest.skip("roles.gateway.identity.accounts maps nobody but the victim to a plain account name")


@pytest.fixture(scope="module")
def origins(lab: Any) -> dict[str, str]:
    host = own_origins(lab.config)
    if host is None:
        pytest.skip("this stack gives analysts' servers no hosts of their own (no self-hosted gateway "
                    "with a Key Vault certificate)")
    machine = next(m for m in lab.machines if m.role == "analytics").name
    hub_base = f"https://{machine}.{private_dns_zone(lab.config)}:{HUB_PORT}/{machine}"
    return {"gateway": host, "machine": machine, "hub": hub_base,
            "victim": user_host(VICTIM, machine, host), "attacker": user_host(_attacker(lab), machine, host)}


def _hub_api(analytics_host: Any, origins: dict[str, str], user: str, method: str, path: str,
             host: str | None = None) -> Any:
    token = analytics_host.run(
        f"cd /var/lib/jupyterhub && jupyterhub token -f /etc/jupyterhub/jupyterhub_config.py {shlex.quote(user)}")
    assert token.rc == 0, token.stderr
    value = token.stdout.strip().splitlines()[-1]
    named = f"-H {shlex.quote('Host: ' + host)}" if host else ""
    return analytics_host.run(
        f"curl -sS -X {method} -H {shlex.quote('Authorization: token ' + value)} {named} "
        f"-w '\\n%{{http_code}}' {shlex.quote(origins['hub'] + path)}")


@pytest.fixture(scope="module")
def attack_url(lab: Any, origins: dict[str, str], analytics_host: Any, gateway_host: Any) -> str:
    """A's page, served by A's own running server, with B's server as its target."""
    attacker = _attacker(lab)
    gateway_ip = next(m for m in lab.machines if m.role == "gateway").private_ip
    # A signs in to the hub (through the gateway's address), which creates A's account.
    signed_in = gateway_host.run(
        f"curl -sS -o /dev/null -w '%{{http_code}}' --interface {shlex.quote(gateway_ip)} "
        f"-H {shlex.quote('X-Remote-User: ' + attacker)} {shlex.quote(origins['hub'] + '/hub/gateway-login')}")
    assert signed_in.stdout == "302", signed_in.stderr
    home = f"/home/{attacker}"
    page_dir = f"{home}/shared-page"
    config = f"c.ServerApp.extra_static_paths = [{page_dir!r}]\n"
    for path, content in ((f"{home}/.jupyter/jupyter_server_config.py", config),
                          (f"{page_dir}/figures.html", ATTACK_PAGE)):
        written = analytics_host.run(
            f"install -d -o {attacker} -g {attacker} {shlex.quote(str(Path(path).parent))} && "
            f"cat > {shlex.quote(path)} <<'PAGE'\n{content}PAGE\nchown {attacker}: {shlex.quote(path)}")
        assert written.rc == 0, written.stderr
    # A's server starts (again) with that configuration: stopped first, if it was running.
    _hub_api(analytics_host, origins, attacker, "DELETE", f"/hub/api/users/{attacker}/server")
    for _ in range(60):
        model = _hub_api(analytics_host, origins, attacker, "GET", f"/hub/api/users/{attacker}")
        if not json.loads(model.stdout.rsplit("\n", 1)[0]).get("servers"):
            break
        analytics_host.run("sleep 2")
    started = _hub_api(analytics_host, origins, attacker, "POST", f"/hub/api/users/{attacker}/server")
    assert started.stdout.rsplit("\n", 1)[-1] in ("201", "202"), started.stdout
    server_url = ""
    for _ in range(60):
        model = _hub_api(analytics_host, origins, attacker, "GET", f"/hub/api/users/{attacker}")
        server = json.loads(model.stdout.rsplit("\n", 1)[0]).get("servers", {}).get("", {})
        if server.get("ready"):
            server_url = server["url"]
            break
        analytics_host.run("sleep 2")
    assert server_url.startswith(f"https://{origins['attacker']}/"), server_url
    victim_server = f"https://{origins['victim']}/{origins['machine']}/user/{VICTIM}/"
    hub = f"https://{origins['gateway']}/{origins['machine']}/"
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in
                     (("target", victim_server), ("hub", hub), ("gateway", f"https://{origins['gateway']}/"),
                      ("marker", MARKER)))
    return f"{server_url}static/figures.html?{query}"


@pytest.fixture(scope="module")
def victim_visit(lab: Any, origins: dict[str, str], attack_url: str) -> dict[str, Any]:
    """B signs in, opens their own JupyterLab, then follows A's link."""
    argv = [sys.executable, str(HERE / "gateway_browser.py"), "--url", f"https://{origins['gateway']}/",
            "--user", VICTIM, "--ca-cert", str(lab.ca_cert), "--notebook", origins["machine"],
            "--visit", attack_url]
    result = lab.client(argv, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _found(victim_visit: dict[str, Any]) -> dict[str, Any]:
    return json.loads(victim_visit["visit"]["result"])


def test_the_hub_sends_the_victim_to_a_host_of_their_own(victim_visit, origins):
    lab_url = urlsplit(victim_visit["notebook"]["lab_url"])
    assert lab_url.netloc == origins["victim"]
    assert lab_url.path.startswith(f"/{origins['machine']}/user/{VICTIM}/")


def test_the_attackers_page_runs_on_the_attackers_origin(victim_visit, origins):
    origin = _found(victim_visit)["origin"]
    assert origin == f"https://{origins['attacker']}"
    assert origin not in (f"https://{origins['victim']}", f"https://{origins['gateway']}")


def test_the_attackers_page_finds_no_gateway_or_hub_cookie(victim_visit):
    cookies = _found(victim_visit)["cookies"]
    for name in (*GATEWAY_COOKIES, f"jupyterhub-user-{VICTIM}"):
        assert name not in cookies


def test_every_read_of_the_victims_server_the_hub_and_the_gateway_fails(victim_visit):
    reads = _found(victim_visit)["reads"]
    assert len(reads) == 5
    for url, outcome in reads.items():
        assert outcome.startswith("failed"), f"{url}: {outcome}"


def test_the_attackers_page_cannot_script_the_victims_jupyterlab(victim_visit):
    assert _found(victim_visit)["frame"].startswith("blocked"), _found(victim_visit)["frame"]


def test_the_victims_server_is_unchanged(victim_visit, analytics_host, origins):
    assert _found(victim_visit)["writes"], "the page made no write attempt"
    planted = analytics_host.run(f"ls /home/{VICTIM}/{MARKER}.txt /home/{VICTIM}/{MARKER}.ipynb")
    assert planted.rc != 0, planted.stdout
    sessions = _hub_api(analytics_host, origins, VICTIM, "GET", f"/user/{VICTIM}/api/sessions",
                        host=origins["victim"])
    body, _, status = sessions.stdout.rpartition("\n")
    assert status == "200", sessions.stdout
    assert MARKER not in body


def test_the_hubs_pages_are_not_served_on_an_analysts_host(lab, origins):
    host = origins["attacker"]
    result = lab.client(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(lab.ca_cert),
                         "--connect-to", f"{host}:443:{origins['gateway']}:443",
                         f"https://{host}/{origins['machine']}/hub/api/user"])
    assert result.stdout == "403", result.stdout + result.stderr
