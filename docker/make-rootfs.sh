#!/bin/sh
# Copies into $1 the smallest tree git needs to clone, commit and push over HTTPS: the git binary, its
# HTTP remote helper, the shared libraries both load (found with ldd), the CA bundle and a sticky /tmp.
# Used by the Dockerfile's Debian stage after `apt-get install git ca-certificates`; works on musl too.
set -eu
root="$1"
core="$(${GIT:-git} --exec-path)"
mkdir -p "$root/usr/bin" "$root$core" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
cp -L "$core/git" "$core/git-remote-http" "$root$core/"
# Symlinks, not copies: git re-executes itself from its exec path for builtins (pack-objects, …).
ln -s git-remote-http "$root$core/git-remote-https"
ln -s "$core/git" "$root/usr/bin/git"
# One ldd per file: musl's ldd lists only its first argument.
{ ldd "$core/git"; ldd "$core/git-remote-http"; } | awk '
  /=>/ && $3 ~ /^\// { print $1, $3; next }
  $1 ~ /^\// && $2 ~ /^\(/ { print $1, $1 }' | sort -u |
while read -r name path; do
  dir="$(dirname "$path")"
  mkdir -p "$root$dir"
  [ -e "$root$path" ] || cp -L "$path" "$root$path"
  # musl names libc `libc.musl-<arch>.so.1` but ldd resolves it to the loader: keep the name too.
  base="$(basename "$name")"
  [ "$base" = "$(basename "$path")" ] || [ -e "$root$dir/$base" ] || ln -s "$(basename "$path")" "$root$dir/$base"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
ln -s certs/ca-certificates.crt "$root/etc/ssl/cert.pem"
# Name lookups as Debian images do them: /etc/hosts first (a runner's `--add-host`, a service alias),
# then DNS. Without this file glibc asks DNS first and an NXDOMAIN hides the /etc/hosts entry.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
# A passwd entry, so tools that look up the current user find one; HOME is the writable /tmp.
echo 'root:x:0:0:root:/tmp:/usr/bin/gitops-deploy' > "$root/etc/passwd"
