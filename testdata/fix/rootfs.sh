#!/usr/bin/env bash
# Builds the base image's root file system for tests/fix.rs as a tar: Debian
# bookworm's minbase package set (what `debootstrap --variant=minbase
# --include=python3,python3-pip,python3-venv bookworm` installs, listed in
# rootfs.packages) from deb.debian.org through the host's apt, unpacked with
# dpkg-deb and registered in /var/lib/dpkg/status, so that apt, dpkg and pip
# work in the image. debootstrap took 2m42s here (1m12s with the .debs
# already downloaded: it configures every package and byte-compiles Python);
# this takes ~30 s. Maintainer scripts don't run: the few things they would
# do that the tests need (users, directories, /usr/bin/awk, ld.so.cache,
# byte-compiled Python) are done below.
#
# The image's /etc/apt/sources.list and /etc/pip.conf are the test's: they
# name its own package server.
#
# usage: rootfs.sh OUT.tar [WORK_DIR]
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-$(mktemp -d)}
root=$work/rootfs
debs=$work/debs
rm -rf "$root" "$debs"
mkdir -p "$debs" "$root"/usr/{bin,sbin,lib,lib64}
# bookworm's merged /usr (debootstrap does the same before unpacking).
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

(cd "$debs" && grep -v '^#' "$here/rootfs.packages" | xargs apt-get download -q=2 2> >(grep -v unsandboxed >&2))

info=$root/var/lib/dpkg/info
mkdir -p "$info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
status=$root/var/lib/dpkg/status
: >"$status"
for deb in "$debs"/*.deb; do
  control=$(dpkg-deb -f "$deb")
  field() { sed -n "s/^$1: //p" <<<"$control"; }
  name=$(field Package)
  [ "$(field Multi-Arch)" = same ] && name="$name:$(field Architecture)"
  # What dpkg records: the control fields with a Status, and the file list.
  printf '%s\n' "$control" | sed '1a Status: install ok installed' >>"$status"
  echo >>"$status"
  dpkg-deb --fsys-tarfile "$deb" | tar -xv --keep-directory-symlink -C "$root" |
    sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' >"$info/$name.list"
done
: >"$root/var/lib/dpkg/available"

# base-passwd's and apt's maintainer scripts: the users and groups.
cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
echo '_apt:x:42:65534::/nonexistent:/usr/sbin/nologin' >>"$root/etc/passwd"
# base-files': the directories of the FHS that no package ships.
mkdir -p "$root"/{opt,srv,mnt,media,home,root,proc,sys,dev,run,boot,tmp,var/tmp}
mkdir -p "$root"/usr/local/{bin,sbin,lib,include,share,src}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
# mawk's: the awk alternative.
ln -sf mawk "$root/usr/bin/awk"
ldconfig -r "$root"
# python3's: byte-compile the standard library and the installed modules, as
# py3compile does in Debian (so pip's own imports write no .pyc in a build).
chroot "$root" python3 -m compileall -q /usr/lib/python3.11 /usr/lib/python3/dist-packages >/dev/null
# What debian:bookworm-slim leaves out (its dpkg path-exclude list).
rm -rf "$root"/usr/share/{doc,man,groff,info,lintian,linda,locale}
# Debian's pip refuses to install into the system Python (PEP 668).
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED

# Fixed owners and order (the files keep the packages' times, which the
# .pyc files record).
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$root" -cf "$out" .
[ -n "${2:-}" ] || rm -rf "$work"
