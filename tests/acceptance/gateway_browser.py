"""A real browser signing in at the gateway: Debian's chromium driven by Playwright.

Run as a script inside the lab's ``client`` namespace (an analyst at home), it prints one JSON
object describing what the browser saw. The acceptance suite and benchmarks/gateway_login.py
both use it. The browser trusts the lab CA through its own NSS database (chromium does not read
the system store), in a throwaway profile directory.

    python gateway_browser.py --url https://analytics.example.nhs.uk/ --user analyst \
        --ca-cert /path/ca.crt --screenshot landing.png [--resolve HOST=IP]... \
        [--notebook analytics-1 --cell python3='print(1)' --cell ir='cat(1)'] [--hub analytics-1] \
        [--visit URL]

With ``--notebook MACHINE`` the signed-in browser then opens that analytics VM's JupyterHub through
the gateway, waits for the analyst's server, and runs each cell in a new kernel from the page,
with the page's own cookies, over the same REST and WebSocket calls JupyterLab makes. With
``--hub MACHINE`` it only asks that VM's JupyterHub to sign the person in, and reports the answer.
With ``--visit URL`` it finally follows a link, as the signed-in person would, and reports the text
the page writes into its ``#result`` element.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
SERVER_START_MS = 240_000
# Runs in the JupyterLab page: one kernel per cell, the cell executed over the kernel's WebSocket.
RUN_CELLS_JS = """
async ([base, cells]) => {
  const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
  const headers = {"Content-Type": "application/json", "X-XSRFToken": xsrf};
  const results = {};
  for (const [name, code] of cells) {
    const made = await fetch(base + "api/kernels", {method: "POST", headers, body: JSON.stringify({name})});
    if (!made.ok) { results[name] = "starting the kernel: HTTP " + made.status; continue; }
    const kernel = await made.json();
    const session = crypto.randomUUID();
    const msgId = crypto.randomUUID();
    const url = base.replace(/^http/, "ws") + "api/kernels/" + kernel.id + "/channels?session_id=" + session;
    results[name] = await new Promise((resolve) => {
      const socket = new WebSocket(url);
      const out = [];
      const asked = new Set();
      let ready = false, replied = false, idle = false;
      const send = (type, id, content) => socket.send(JSON.stringify({
        header: {msg_id: id, msg_type: type, session, username: "", version: "5.3", date: ""},
        parent_header: {}, metadata: {}, channel: "shell", buffers: [], content}));
      // Output sent before the server subscribes this connection to the kernel's output channel is
      // lost: ask for kernel_info until a status for one of those requests arrives, then execute.
      const ask = () => { if (ready) return; const id = crypto.randomUUID(); asked.add(id);
                          send("kernel_info_request", id, {}); setTimeout(ask, 2000); };
      const timer = setTimeout(() => { socket.close(); resolve("no reply in 180 s: " + out.join("")); }, 180000);
      socket.onerror = () => { clearTimeout(timer); resolve("the kernel WebSocket failed"); };
      socket.onopen = ask;
      socket.onmessage = (event) => {
        const m = JSON.parse(event.data);
        if (!ready) {
          const answered = m.parent_header && asked.has(m.parent_header.msg_id);
          if (m.channel === "iopub" && m.msg_type === "status" && answered) {
            ready = true;
            send("execute_request", msgId, {code, silent: false, store_history: false, user_expressions: {},
                                             allow_stdin: false, stop_on_error: true});
          }
          return;
        }
        if (!m.parent_header || m.parent_header.msg_id !== msgId) return;
        // The reply (shell) may overtake the output (iopub): done when both the reply and the
        // kernel's "idle" status for this request, sent after all its output, have arrived.
        if (m.msg_type === "stream") out.push(m.content.text);
        else if (m.msg_type === "execute_result" || m.msg_type === "display_data")
          out.push(m.content.data["text/plain"] || "");
        else if (m.msg_type === "error") out.push(m.content.ename + ": " + m.content.evalue);
        else if (m.msg_type === "execute_reply") replied = true;
        else if (m.msg_type === "status" && m.content.execution_state === "idle") idle = true;
        if (replied && idle) { clearTimeout(timer); socket.close(); resolve(out.join("").trim()); }
      };
    });
    await fetch(base + "api/kernels/" + kernel.id, {method: "DELETE", headers});
  }
  return results;
}
"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def _trust_ca(home: Path, ca_cert: Path) -> None:
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-t", "C,,", "-n", "trust-blueprints-lab-ca",
                    "-i", str(ca_cert)], check=True)


def hosts_file_entries(path: Path = Path("/etc/hosts")) -> list[str]:
    """HOST=IP for every name in a hosts file: chromium's own resolver does not read the file that
    `ip netns exec` puts in place, so the names the namespace knows are handed to it directly."""
    entries = []
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and not fields[0].startswith("127."):
            # Names under a host too, as a wildcard DNS record gives them (analysts' own hosts
            # under the gateway's name), which a hosts file cannot hold.
            entries += [f"{prefix}{name}={fields[0]}" for name in fields[1:] for prefix in ("", "*.")]
    return entries


def run_notebook_cells(page, origin: str, machine: str, cells: list[tuple[str, str]]) -> dict[str, object]:
    """Open ``machine``'s JupyterHub through the gateway and run ``cells`` (kernel, code) from the page."""
    started = time.monotonic()
    page.goto(f"{origin}/{machine}/hub/spawn")
    # The hub signs the analyst in from the gateway's header, starts the server, then opens JupyterLab.
    page.wait_for_url(f"**/{machine}/user/*/lab**", timeout=SERVER_START_MS)
    result: dict[str, object] = {"lab_url": page.url, "seconds_to_lab": round(time.monotonic() - started, 3)}
    base = page.url.split("/lab", 1)[0] + "/"
    result["cells"] = page.evaluate(RUN_CELLS_JS, [base, [list(cell) for cell in cells]])
    return result


def sign_in(url: str, user: str, ca_cert: Path, screenshot: Path | None,
            resolve: list[str], git_path: str = "/git/", notebook: str | None = None,
            cells: list[tuple[str, str]] | None = None, hub: str | None = None,
            visit: str | None = None) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    flags = list(CHROMIUM_FLAGS)
    if resolve:
        rules = ", ".join(f"MAP {entry.split('=', 1)[0]} {entry.split('=', 1)[1]}" for entry in resolve)
        flags.append(f"--host-resolver-rules={rules}")
    result: dict[str, object] = {"user": user}
    with tempfile.TemporaryDirectory(prefix="gateway-browser-") as home:
        _trust_ca(Path(home), ca_cert)
        os.environ["HOME"] = home
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True,
                                                 env={**os.environ, "HOME": home})
            page = browser.new_page()
            started = time.monotonic()
            page.goto(url)
            result["provider_url"] = page.url
            page.fill("input[name=sub]", user)
            page.click("button[type=submit]:not([name=action])")
            page.wait_for_load_state("load")
            result["seconds_to_landing"] = round(time.monotonic() - started, 3)
            result["after_sign_in_url"] = page.url
            response = page.goto(url)
            result["landing_status"] = response.status if response else None
            result["landing_title"] = page.title()
            account = page.locator("#account")
            result["account"] = account.inner_text() if account.count() else None
            result["tools"] = page.locator("#tools a").evaluate_all("links => links.map(a => a.href)")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
            git = page.goto(origin + git_path)
            result["git_status"] = git.status if git else None
            result["git_title"] = page.title()
            result["git_text"] = page.inner_text("body")[:4000]
            if hub:
                # The hub's own sign-in through the gateway: refused (403) or on to the analyst's server.
                answer = page.goto(f"{origin}/{hub}/hub/gateway-login")
                result["hub_status"] = answer.status if answer else None
                result["hub_url"] = page.url
                result["hub_text"] = page.inner_text("body")[:2000]
            if notebook and result["landing_status"] == 200:
                result["notebook"] = run_notebook_cells(page, origin, notebook, cells or [])
            if visit:
                page.goto(visit)
                page.wait_for_function("(document.getElementById('result') || {}).textContent",
                                       timeout=120_000)
                result["visit"] = {"url": page.url, "result": page.inner_text("#result")}
            browser.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--ca-cert", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--resolve", action="append", default=[], help="HOST=IP, when DNS does not")
    parser.add_argument("--notebook", metavar="MACHINE", help="then run cells on this analytics VM's JupyterHub")
    parser.add_argument("--cell", action="append", default=[], metavar="KERNEL=CODE", help="a cell for --notebook")
    parser.add_argument("--hub", metavar="MACHINE", help="then sign in to this analytics VM's JupyterHub")
    parser.add_argument("--visit", metavar="URL", help="then follow this link and report its #result text")
    args = parser.parse_args()
    cells = []
    for cell in args.cell:
        kernel, separator, code = cell.partition("=")
        if not separator or not kernel:
            parser.error(f"--cell {cell!r}: expected KERNEL=CODE, e.g. python3='print(1)'")
        cells.append((kernel, code))
    resolve = args.resolve or hosts_file_entries()
    print(json.dumps(sign_in(args.url, args.user, args.ca_cert, args.screenshot, resolve,
                             notebook=args.notebook, cells=cells, hub=args.hub, visit=args.visit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
