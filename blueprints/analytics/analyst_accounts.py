# analytics-analysts SETTINGS-FILE: give each analyst the stack lists an account on this VM and
# let them in over SSH with their key alone, from the gateway or the Bastion subnet only.
#
# Run by trust-blueprints-settings (hook analytics-analysts) whenever the list or a key changes.
# The keys themselves are root-owned files the settings write (/etc/ssh/trust-blueprints-keys/NAME);
# this program makes the accounts (the same adduser command the hub uses, so SSH and the hub share
# one account, with no password and no sudo) and writes sshd's rule for who may sign in from where.
# Each name is checked by the hub's own rule (sign_in.py's refusal, included above this program on
# the VM): never the administrator, a system or service account, or an account holding sudo.
# Standard library only.
import json
import os
import subprocess
import sys
import tempfile

if __name__ != "__main__":  # the tests import this file; on the VM sign_in.py is included above it
    from blueprints.analytics.sign_in import _local_groups, _local_uid, refusal

ANALYSTS_SSHD_FILE = "/etc/ssh/sshd_config.d/30-trust-blueprints-analysts.conf"
ANALYST_KEYS_DIRECTORY = "/etc/ssh/trust-blueprints-keys"
ADD_ANALYST = ["adduser", "--quiet", "--disabled-password", "--comment", "analyst"]
SSH_ORIGIN = "roles.gateway.ssh_users"


def analyst_log(message):
    print(f"analytics-analysts: {message}", flush=True)


def accepted_analysts(settings, uid_of=None, groups_of=None):
    """(names allowed to sign in, [why each other name is refused])."""
    uid_of = uid_of or _local_uid
    groups_of = groups_of or _local_groups
    rule = {**settings, "accounts": list(settings.get("analysts", ()))}
    allowed, refused = [], []
    for name in settings.get("analysts", ()):
        why = refusal(name, SSH_ORIGIN, rule, uid_of=uid_of, groups_of=groups_of)
        if why:
            refused.append(why)
        elif name not in allowed:
            allowed.append(name)
    return allowed, refused


def analysts_sshd_config(administrator, names, sources):
    """sshd's rule: the administrator as before; each analyst with their key, from the sources only.

    AllowUsers names everyone who may sign in at all, so an account made by the hub (or an analyst
    since removed from the stack) has no SSH, whatever keys it puts in its own ~/.ssh.
    """
    lines = ["# Written by analytics-analysts from this VM's user data (roles.gateway.ssh_users).",
             "# Nobody else signs in over SSH: the administrator, and each analyst from where the",
             "# gateway or Azure Bastion connects."]
    allowed = [administrator] + [f"{name}@{source}" for name in names for source in sources]
    lines.append("AllowUsers " + " ".join(allowed))
    if names and sources:
        lines += [
            "",
            "# Analysts: the key the stack holds for them (root's file, not ~/.ssh), nothing else;",
            "# forwarding only to this VM's own ports (their JupyterLab), never from it.",
            "Match User " + ",".join(names),
            f"    AuthorizedKeysFile {ANALYST_KEYS_DIRECTORY}/%u",
            "    AuthenticationMethods publickey",
            "    PasswordAuthentication no",
            "    KbdInteractiveAuthentication no",
            "    AllowTcpForwarding local",
            "    PermitListen none",
            "    PermitOpen 127.0.0.1:* localhost:*",
            "    AllowAgentForwarding no",
            "    AllowStreamLocalForwarding no",
            "    X11Forwarding no",
            "    PermitTunnel no",
        ]
    return "\n".join(lines) + "\n"


def _write_if_changed(path, text):
    """Write ``text`` unless it is already there; the previous text ("" if none), or None if unchanged."""
    try:
        with open(path, encoding="utf-8") as current:
            previous = current.read()
    except FileNotFoundError:
        previous = ""
    if previous == text:
        return None
    handle, temporary = tempfile.mkstemp(prefix=".analysts.", dir=os.path.dirname(path))
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return previous


def apply_analysts(settings_path):
    with open(settings_path, encoding="utf-8") as source:
        settings = json.load(source)
    allowed, refused = accepted_analysts(settings)
    for why in refused:
        analyst_log(f"REFUSED: {why}")
    made = []
    for name in allowed:
        if _local_uid(name) is not None:
            made.append(name)
            continue
        # One account that cannot be made must not keep the others out (nor stop a first boot).
        added = subprocess.run([*ADD_ANALYST, name], capture_output=True, text=True, check=False)
        if added.returncode == 0:
            made.append(name)
            analyst_log(f"created account {name} (no password, no sudo)")
        else:
            analyst_log(f"ERROR: adduser {name} failed (exit {added.returncode}): {added.stderr.strip()}")
    allowed = made
    # Checked again once every account exists: adduser must not have given anyone a privileged group.
    allowed, refused_now = accepted_analysts({**settings, "analysts": allowed})
    for why in refused_now:
        analyst_log(f"REFUSED: {why}")
    text = analysts_sshd_config(settings["administrator"], allowed, settings.get("sources", []))
    previous = _write_if_changed(ANALYSTS_SSHD_FILE, text)
    if previous is None:
        analyst_log(f"sshd already lets in {', '.join(allowed) or 'no analyst'}")
        return 0
    check = subprocess.run(["/usr/sbin/sshd", "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        # Never leave sshd with a rule it cannot read: the administrator must still get in.
        if previous:
            _write_if_changed(ANALYSTS_SSHD_FILE, previous)
        else:
            os.unlink(ANALYSTS_SSHD_FILE)
        analyst_log(f"ERROR: sshd refused the analysts' rule, kept the previous one: {check.stderr.strip()}")
        return 1
    subprocess.run(["systemctl", "try-reload-or-restart", "ssh.service"], check=True)
    analyst_log(f"sshd lets in {', '.join(allowed) or 'no analyst'} from "
                f"{', '.join(settings.get('sources', [])) or 'nowhere'}")
    # A refused name is logged, not fatal: the others still get in, and the stack's validation
    # names the field long before a VM sees it.
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or os.geteuid() != 0:
        print("usage (as root): analytics-analysts /etc/trust-blueprints/analysts.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(apply_analysts(sys.argv[1]))
