#!/bin/sh
# trust-blueprints-data-disk [CONFIG]: this role's data directories onto its Azure data disk.
# Formats only a blank disk; see blueprints/data_disk.py and docs/administrators.md.
set -eu
config=${1:-/etc/trust-blueprints/data-disk.conf}
case $config in /*) ;; *) config=./$config ;; esac
. "$config"
say() { echo "trust-blueprints: data disk: $*"; }
fail() { echo "trust-blueprints: ERROR: data disk: $*" >&2; exit 1; }

# udev names the disk (where udev runs: not in containers).
if [ -S /run/udev/control ]; then udevadm settle --timeout=30 || true; fi
disk=""
for link in $device_links; do
  if [ -b "$link" ]; then disk=$(readlink -f "$link"); break; fi
done
if [ -z "$disk" ]; then
  platform=$(cloud-init query platform 2>/dev/null || true)
  [ "$platform" != "$disk_platform" ] \
    || fail "$platform attaches a data disk at LUN $lun to this VM, but none of $device_links exists; not putting $directories on the OS disk"
  say "no data disk at LUN $lun (none of $device_links); using the OS disk for $directories"
  exit 0
fi

if blkid -p "$disk" >/dev/null 2>&1; then probe=0; else probe=$?; fi
case $probe in
  2)
    say "formatting blank $disk (LUN $lun) as ext4, label $label"
    mkfs.ext4 -q -L "$label" "$disk" ;;
  0)
    found=$(blkid -p -o export "$disk" | grep -E '^(TYPE|PTTYPE|LABEL)=' | tr '\n' ' ')
    [ "$(blkid -p -o value -s TYPE "$disk")" = ext4 ] && [ "$(blkid -p -o value -s LABEL "$disk")" = "$label" ] \
      || fail "$disk (LUN $lun) holds ${found:-unknown data}, not an ext4 file system labelled $label; not touching it"
    say "$disk (LUN $lun) already holds this role's file system; keeping its data" ;;
  *) fail "$disk (LUN $lun) could not be read (blkid exit $probe)" ;;
esac
uuid=$(blkid -p -o value -s UUID "$disk")
[ -n "$uuid" ] || fail "$disk (LUN $lun) has no file system UUID"

# This step owns the fstab lines for its mount points.
new_fstab=$(mktemp "$fstab.XXXXXX")
awk -v root="$disk_root" -v dirs=" $directories " \
  '!(($2 == root || index(dirs, " " $2 " ")) && $1 !~ /^#/) && $0 != "# trust-blueprints data disk"' \
  "$fstab" > "$new_fstab"
{
  echo "# trust-blueprints data disk"
  echo "UUID=$uuid $disk_root ext4 defaults,nofail,x-systemd.device-timeout=$device_timeout 0 2"
  for dir in $directories; do
    echo "$disk_root$dir $dir none bind,nofail,x-systemd.requires-mounts-for=$disk_root 0 0"
  done
} >> "$new_fstab"
chmod 0644 "$new_fstab"
mv "$new_fstab" "$fstab"
if [ "$fstab" = /etc/fstab ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

mkdir -p "$disk_root"
mountpoint -q "$disk_root" || mount -T "$fstab" "$disk_root"

# New to the disk: copy what is there now, again below with services stopped.
fresh=""
for dir in $directories; do
  on_disk=$disk_root$dir
  if mountpoint -q "$dir"; then continue; fi
  if [ ! -d "$on_disk" ]; then
    mkdir -p "$on_disk"
    if [ -d "$dir" ]; then
      chown --reference="$dir" "$on_disk" && chmod --reference="$dir" "$on_disk"
      cp -a "$dir"/. "$on_disk"/
      fresh="$fresh $dir"
    fi
  elif [ -d "$dir" ]; then
    # A replaced VM may number a service account differently.
    want=$(stat -c %u:%g "$dir")
    have=$(stat -c %u:%g "$on_disk")
    if [ "$want" != "$have" ] && [ "$want" != 0:0 ]; then
      say "$dir on the data disk belongs to $have; giving it to $want as on this machine"
      chown -R "$want" "$on_disk"
    fi
    # This VM's files from the stack (admin keys) win; a missing parent is copied whole.
    for file in $refresh_files; do
      case $file in "$dir"/*) ;; *) continue ;; esac
      [ -f "$file" ] || continue
      part=$dir rest=${file#"$dir"/}
      while :; do
        part=$part/${rest%%/*}
        if [ ! -e "$disk_root$part" ] || [ "$part" = "$file" ]; then cp -a "$part" "$disk_root$part"; break; fi
        rest=${rest#*/}
      done
      say "$file taken from this VM onto the kept disk"
    done
  fi
done

stopped=""
restart_stopped() { for service in $stopped; do systemctl start "$service" || true; done; }
trap restart_stopped EXIT
for service in $stop_services; do
  if systemctl is-active --quiet "$service" 2>/dev/null; then systemctl stop "$service"; stopped="$stopped $service"; fi
done
for dir in $fresh; do
  cp -a -u "$dir"/. "$disk_root$dir"/
  say "copied $dir onto the data disk"
done
for dir in $directories; do
  if mountpoint -q "$dir"; then say "$dir is already mounted"; continue; fi
  mkdir -p "$dir"
  mount -T "$fstab" "$dir"
done
say "$disk (LUN $lun, UUID $uuid) mounted on $disk_root; on the data disk: $directories"
