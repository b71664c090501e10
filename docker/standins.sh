#!/usr/bin/env bash
# Makes local stand-ins of the two official images the Dockerfile starts from, in a buildah store, so the
# shipped Dockerfile can be built where no registry can be reached (`buildah bud --pull=never`):
#
#   docker.io/library/debian:bookworm-slim   debootstrap --variant=minbase bookworm (what the official
#                                            image is: a minbase Debian rootfs made by debuerreotype)
#   docker.io/library/rust:1-slim-bookworm   that image + what rust-lang/docker-rust's
#                                            `stable/bookworm/slim/Dockerfile` adds: ca-certificates, gcc,
#                                            libc6-dev, a minimal-profile toolchain under
#                                            RUSTUP_HOME=/usr/local/rustup with the rustup proxies in
#                                            CARGO_HOME=/usr/local/cargo/bin, PATH and RUST_VERSION set.
#
# The Rust stand-in gets this machine's toolchain (only rustc, cargo, rust-std for the host: the minimal
# profile) at the official paths instead of running rustup-init, which needs static.rust-lang.org.
#
# Usage: docker/standins.sh            (buildah's storage options come from BUILDAH_ARGS, e.g.
#                                      "--root DIR --runroot DIR --storage-driver vfs")
# The debootstrapped rootfs is cached as a tarball in STANDIN_CACHE (default target/standins); a missing
# cache only costs time (about 1.5 minutes). Images already in the store are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${STANDIN_CACHE:-$PWD/target/standins}"
read -r -a store <<<"${BUILDAH_ARGS:-}"
bh() { buildah "${store[@]}" "$@"; }
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have() { bh inspect --type image "$1" >/dev/null 2>&1; }

debian=docker.io/library/debian:bookworm-slim
rust=docker.io/library/rust:1-slim-bookworm

if ! have "$debian"; then
  mkdir -p "$cache"
  tarball="$cache/bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    echo "standins: debootstrap --variant=minbase bookworm (about 1.5 min)" >&2
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # As debuerreotype's slim images: no package lists or caches in the image.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  ctr="$(bh from scratch)"
  bh add "$ctr" "$tarball" / >/dev/null
  bh config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bh commit -q "$ctr" "$debian" >/dev/null
  bh rm "$ctr" >/dev/null
fi

if ! have "$rust"; then
  toolchain="$(rustc --print sysroot)"
  version="$(rustc --version | awk '{print $2}')"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  staged="$(mktemp -d)"
  trap 'rm -rf "$staged"' EXIT
  dest="$staged/usr/local/rustup/toolchains/$version-$host"
  mkdir -p "$dest/bin" "$dest/lib/rustlib" "$staged/usr/local/cargo/bin"
  cp -a "$toolchain/bin/rustc" "$toolchain/bin/rustdoc" "$toolchain/bin/cargo" "$dest/bin/"
  cp -a "$toolchain"/lib/*.so* "$dest/lib/"
  cp -a "$toolchain/lib/rustlib/$host" "$dest/lib/rustlib/"
  cp -a "$toolchain"/lib/rustlib/{components,rust-installer-version,multirust-config.toml} "$dest/lib/rustlib/" 2>/dev/null || true
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n\n[overrides]\n' "$version-$host" \
    >"$staged/usr/local/rustup/settings.toml"
  cp -L "$(command -v rustup)" "$staged/usr/local/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc; do ln -s rustup "$staged/usr/local/cargo/bin/$proxy"; done
  chmod -R a+w "$staged/usr/local/rustup" "$staged/usr/local/cargo"

  ctr="$(bh from --pull=never "$debian")"
  # chroot isolation shares the host's network: apt reaches the Debian mirror as the official build does.
  bh run --isolation chroot "$ctr" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates gcc libc6-dev >/dev/null && rm -rf /var/lib/apt/lists/*'
  bh copy "$ctr" "$staged/usr/local" /usr/local >/dev/null
  bh config \
    --env RUSTUP_HOME=/usr/local/rustup \
    --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION="$version" \
    "$ctr"
  bh run --isolation chroot "$ctr" -- sh -c 'cargo --version && rustc --version' >&2
  bh commit -q "$ctr" "$rust" >/dev/null
  bh rm "$ctr" >/dev/null
fi
echo "standins: $debian and $rust ready" >&2
