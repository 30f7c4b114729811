"""A real browser signing in at the gateway: Debian's chromium driven by Playwright.

Run as a script inside the lab's ``client`` namespace (an analyst at home), it prints one JSON
object describing what the browser saw. The acceptance suite and benchmarks/gateway_login.py
both use it. The browser trusts the lab CA through its own NSS database (chromium does not read
the system store), in a throwaway profile directory.

    python gateway_browser.py --url https://analytics.example.nhs.uk/ --user analyst \
        --ca-cert /path/ca.crt --screenshot landing.png [--resolve HOST=IP]...
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
            entries += [f"{name}={fields[0]}" for name in fields[1:]]
    return entries


def sign_in(url: str, user: str, ca_cert: Path, screenshot: Path | None,
            resolve: list[str], git_path: str = "/git/") -> dict[str, object]:
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
            # A client-sent X-Remote-User must never reach a tool as the signed-in name.
            browser.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--ca-cert", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--resolve", action="append", default=[], help="HOST=IP, when DNS does not")
    args = parser.parse_args()
    resolve = args.resolve or hosts_file_entries()
    print(json.dumps(sign_in(args.url, args.user, args.ca_cert, args.screenshot, resolve)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
