#!/bin/sh
# trust-blueprints-harden [--no-ssh-forwarding]: the host hardening every role shares, run once
# from runcmd before the role starts its services. What each setting is for, and why the rest of
# lynis's suggestions are left, is in docs/hardening.md.
set -eu
forwarding=yes
[ "${1:-}" = --no-ssh-forwarding ] && forwarding=no

# Kernel modules no VM here uses: removable storage, and network protocols with a history of bugs.
mkdir -p /etc/modprobe.d
: > /etc/modprobe.d/trust-blueprints-unused.conf
for module in usb-storage firewire-core firewire-ohci firewire-sbp2 dccp sctp rds tipc; do
  printf 'blacklist %s\ninstall %s /bin/true\n' "$module" "$module" >> /etc/modprobe.d/trust-blueprints-unused.conf
done

# Kernel settings: no kernel addresses or logs for users, no core dumps of privileged programs, no
# ptrace of processes that are not one's own children, no ICMP redirects, martians logged.
cat > /etc/sysctl.d/60-trust-blueprints.conf <<'SYSCTL'
kernel.kptr_restrict = 2
kernel.dmesg_restrict = 1
kernel.sysrq = 0
kernel.yama.ptrace_scope = 1
kernel.unprivileged_bpf_disabled = 1
net.core.bpf_jit_harden = 2
dev.tty.ldisc_autoload = 0
fs.protected_fifos = 2
fs.protected_regular = 2
fs.suid_dumpable = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.secure_redirects = 0
net.ipv4.conf.default.secure_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.conf.default.log_martians = 1
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.default.accept_redirects = 0
SYSCTL
# Applied now and at every boot (skipped where /proc/sys is read-only, as in a container).
systemctl restart systemd-sysctl.service

# Shown before every sign-in.
printf '%s\n' "This system is private and for authorised use only. Activity is monitored and recorded;" \
  "unauthorised access is prohibited and may be reported under the law." | tee /etc/issue /etc/issue.net >/dev/null

# sshd: the role's own drop-ins (lower numbers) still win where they set the same option.
{
  echo "LogLevel VERBOSE"
  echo "MaxAuthTries 3"
  echo "ClientAliveCountMax 2"
  echo "TCPKeepAlive no"
  echo "X11Forwarding no"
  echo "AllowAgentForwarding no"
  [ "$forwarding" = yes ] || echo "AllowTcpForwarding no"
} > /etc/ssh/sshd_config.d/90-trust-blueprints-hardening.conf
chmod 0600 /etc/ssh/sshd_config
systemctl reload ssh.service 2>/dev/null || true

# New files private to their owner's group; password ageing and hashing rounds for any password an
# administrator sets (accounts here sign in with keys).
sed -i -E 's/^#?[[:space:]]*UMASK[[:space:]].*/UMASK 027/; s/^PASS_MAX_DAYS.*/PASS_MAX_DAYS 365/; s/^PASS_MIN_DAYS.*/PASS_MIN_DAYS 1/' /etc/login.defs
grep -q '^UMASK' /etc/login.defs || echo 'UMASK 027' >> /etc/login.defs
grep -q '^SHA_CRYPT_MIN_ROUNDS' /etc/login.defs || printf 'SHA_CRYPT_MIN_ROUNDS 5000\nSHA_CRYPT_MAX_ROUNDS 50000\n' >> /etc/login.defs
chmod 0700 /etc/cron.d /etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly 2>/dev/null || true

# Accounting: sysstat's history, a weekly check of installed files against their packages, a daily
# rootkit scan, and the kernel's audit trail of every command run as root by a person who signed in.
sed -i 's/^ENABLED=.*/ENABLED="true"/' /etc/default/sysstat
if grep -q '^CRON_CHECK=' /etc/default/debsums; then
  sed -i 's/^CRON_CHECK=.*/CRON_CHECK=weekly/' /etc/default/debsums
else
  echo CRON_CHECK=weekly >> /etc/default/debsums
fi
sed -i 's/^RUN_DAILY=.*/RUN_DAILY="true"/' /etc/chkrootkit/chkrootkit.conf
mkdir -p /etc/audit/rules.d
cat > /etc/audit/rules.d/60-trust-blueprints.rules <<'AUDIT'
-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k root-commands
-a always,exit -F arch=b32 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k root-commands
-w /etc/sudoers -p wa -k privileges
-w /etc/sudoers.d/ -p wa -k privileges
-w /etc/passwd -p wa -k accounts
-w /etc/group -p wa -k accounts
-w /etc/shadow -p wa -k accounts
-w /etc/ssh/ -p wa -k sshd-config
AUDIT
# Process accounting and the audit trail need the kernel's own, which a container does not give:
# skipped there by condition (an Azure VM meets it), and any start that failed before the
# condition was written is forgotten.
for unit in acct auditd audit-rules; do
  mkdir -p "/etc/systemd/system/$unit.service.d"
  printf '[Unit]\nConditionVirtualization=!container\n' > "/etc/systemd/system/$unit.service.d/50-trust-blueprints-kernel.conf"
done
systemctl daemon-reload
systemctl reset-failed acct.service auditd.service audit-rules.service 2>/dev/null || true
systemctl enable --now sysstat.service acct.service auditd.service
systemctl restart audit-rules.service
echo "trust-blueprints: host hardening applied (docs/hardening.md)"
