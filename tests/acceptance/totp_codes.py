"""Time-based one-time codes for the gateway's SSH jump host, as an enrolled analyst's phone makes them."""

from __future__ import annotations

import subprocess
import time

# Restarting the gateway's sshd jail lifts its bans and forgets counted failures (fail2ban's
# aggressive mode counts refusals and scanner probes): checks from home start and end with it.
RESET_SSHD_JAIL = "fail2ban-client reload --restart --unban sshd"


class Totp:
    """Codes for one enrolled secret, never reusing a time step (the gateway refuses reuse) and
    staying under the gateway's limit of three attempts per 30 seconds."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.used: set[int] = set()
        self.attempts: list[float] = []

    def next_code(self) -> str:
        while True:
            now = time.time()
            self.attempts = [t for t in self.attempts if now - t < 31]
            step = int(now // 30)
            # The previous step's code expires when this step ends: use it only early in the step,
            # so a slow connection (a loaded host) still presents it in time.
            candidates = (step, step + 1, step - 1) if now - step * 30 < 10 else (step, step + 1)
            free = [s for s in candidates if s not in self.used]
            if free and len(self.attempts) < 3:
                break
            time.sleep(2)
        chosen = free[0]
        self.used.add(chosen)
        self.attempts.append(now)
        code = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{chosen * 30 + 1}", self.secret],
                              capture_output=True, text=True, check=True)
        return code.stdout.strip()

    def wrong_code(self) -> str:
        self.attempts.append(time.time())
        return "000000"
