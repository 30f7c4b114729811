# analytics-analysts SETTINGS-FILE: give each analyst the stack lists an account on this VM and
# let them in over SSH with their key alone, from the gateway or the Bastion subnet only.
#
# Run by trust-blueprints-settings (hook analytics-analysts) whenever the list or a key changes.
# The keys themselves are root-owned files the settings write (/etc/ssh/trust-blueprints-keys/NAME);
# this program makes the accounts (the same adduser command the hub uses, so SSH and the hub share
# one account, with no password and no sudo) and writes sshd's rule for who may sign in from where.
# Each name is checked by the hub's own rule (sign_in.py's refusal, included above this program on
# the VM): never the administrator, a system or service account, or an account holding sudo.
#
# analytics-analysts --add NAME: make one analyst's account (the hub's add_user_cmd, and the step
# above for each listed analyst). /home is on the data disk, kept when the VM is rebuilt with a new
# OS disk: an account made again takes back the number its kept home has, and no new account is
# ever given a number a kept home still has, which would hand it another analyst's files.
# Standard library only.
import json
import os
import pwd
import subprocess
import sys
import tempfile

if __name__ != "__main__":  # the tests import this file; on the VM sign_in.py is included above it
    from blueprints.analytics.sign_in import FIRST_PERSON_ID, HUB_ACCOUNT_NAME, _local_groups, _local_uid, refusal

ANALYSTS_SSHD_FILE = "/etc/ssh/sshd_config.d/30-trust-blueprints-analysts.conf"
ANALYST_KEYS_DIRECTORY = "/etc/ssh/trust-blueprints-keys"
ADD_ANALYST = ["adduser", "--quiet", "--disabled-password", "--comment", "analyst"]
SSH_ORIGIN = "roles.gateway.ssh_users"
HOME_ROOT = "/home"
# Debian's range for people's accounts (adduser.conf LAST_UID).
LAST_PERSON_ID = 59999


def analyst_log(message):
    print(f"analytics-analysts: {message}", flush=True)


def kept_homes(home_root=HOME_ROOT):
    """{name: (uid, gid)} of each directory in /home: what a kept data disk brings to a new OS disk."""
    homes = {}
    try:
        entries = list(os.scandir(home_root))
    except FileNotFoundError:
        return homes
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            status = entry.stat(follow_symlinks=False)
            homes[entry.name] = (status.st_uid, status.st_gid)
    return homes


def number_for(name, homes, taken):
    """The uid for a new account ``name``: its kept home's, when that is a person's number nobody
    holds; otherwise the lowest free person's number that no kept home has."""
    kept = homes.get(name)
    held_by_homes = {uid for other, (uid, _gid) in homes.items() if other != name}
    if kept and FIRST_PERSON_ID <= kept[0] <= LAST_PERSON_ID and kept[0] not in taken | held_by_homes:
        return kept[0]
    for uid in range(FIRST_PERSON_ID, LAST_PERSON_ID + 1):
        if uid not in taken and uid not in held_by_homes:
            return uid
    raise RuntimeError("no free uid for a person's account")


def add_analyst(name, home_root=None):
    """Make the account ``name`` (no password, no sudo); its kept home, if any, stays its own."""
    home_root = home_root or HOME_ROOT
    if not HUB_ACCOUNT_NAME.fullmatch(name):
        analyst_log(f"ERROR: {name!r} is not a name adduser accepts")
        return 2
    if _local_uid(name) is not None:
        return 0
    homes = kept_homes(home_root)
    uid = number_for(name, homes, {entry.pw_uid for entry in pwd.getpwall()})
    added = subprocess.run([*ADD_ANALYST, "--uid", str(uid), name], capture_output=True, text=True, check=False)
    if added.returncode != 0:
        analyst_log(f"ERROR: adduser {name} failed (exit {added.returncode}): {added.stderr.strip()}")
        return 1
    account = pwd.getpwnam(name)
    home = os.path.join(home_root, name)
    kept = homes.get(name)
    if kept and kept[0] >= FIRST_PERSON_ID and (kept[0], kept[1]) != (account.pw_uid, account.pw_gid):
        # The kept home's number was taken: its files go to their owner by name. Only what the old
        # numbers owned changes hands, and links are changed, never followed.
        subprocess.run(["chown", "-R", "-h", f"--from={kept[0]}", str(account.pw_uid), home], check=True)
        subprocess.run(["chown", "-R", "-h", f"--from=:{kept[1]}", f":{account.pw_gid}", home], check=True)
        analyst_log(f"gave {name} back the kept home {home} (was uid {kept[0]}, now {account.pw_uid})")
    how = "with the kept home" if kept else "new"
    analyst_log(f"created account {name}, uid {account.pw_uid} ({how}; no password, no sudo)")
    return 0


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
        if add_analyst(name) == 0:
            made.append(name)
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
    if os.geteuid() == 0 and len(sys.argv) == 3 and sys.argv[1] == "--add":
        sys.exit(add_analyst(sys.argv[2]))
    if len(sys.argv) != 2 or os.geteuid() != 0:
        print("usage (as root): analytics-analysts /etc/trust-blueprints/analysts.json\n"
              "                 analytics-analysts --add NAME", file=sys.stderr)
        sys.exit(2)
    sys.exit(apply_analysts(sys.argv[1]))
