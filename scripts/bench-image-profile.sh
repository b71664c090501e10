#!/usr/bin/env bash
# Cold release builds of the action's binary, one per candidate profile, for the table in BENCHMARKS.md
# that chose the Dockerfile's profile: wall time of `cargo build` from an empty target directory (crates
# already downloaded, as after the Dockerfile's dependency layer fetched them) and the stripped size.
# The build is the Dockerfile's: static glibc (`+crt-static`), `--target` the host triple, `--locked`.
# Run it alone: it measures CPU time on a machine that must be otherwise idle.
# Usage: scripts/bench-image-profile.sh [NAME=OPT:LTO:CGU ...]
set -euo pipefail
cd "$(dirname "$0")/.."
triple="$(rustc -vV | sed -n 's/^host: //p')"
[ $# -gt 0 ] || set -- old=s:fat:1 cargo-release=3:thin:4 s-nolto=s:false:16 o1-off=1:off:16
cargo fetch --locked -q
printf '| profile | opt-level | lto | codegen-units | cold build | peak RSS of one compiler process | binary |\n| --- | --- | --- | --- | --- | --- | --- |\n'
for spec in "$@"; do
  name="${spec%%=*}"; rest="${spec#*=}"
  IFS=: read -r opt lto cgu <<<"$rest"
  dir="$(mktemp -d)"
  start=$(date +%s.%N)
  # GNU time's %M: the largest resident set of the process tree's members (the biggest rustc: the link).
  CARGO_TARGET_DIR="$dir" RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt" CARGO_PROFILE_RELEASE_LTO="$lto" \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS="$cgu" \
    /usr/bin/time -f %M -o "$dir/rss" cargo build --release --locked -q --offline -p gitops-deploy --bin gitops-deploy --target "$triple"
  end=$(date +%s.%N)
  size=$(stat -c %s "$dir/$triple/release/gitops-deploy")
  printf '| %s | %s | %s | %s | %.0f s | %.0f MB | %.1f MB |\n' "$name" "$opt" "$lto" "$cgu" \
    "$(echo "$end - $start" | bc)" "$(echo "$(cat "$dir/rss") / 1024" | bc -l)" "$(echo "$size / 1000000" | bc -l)"
  rm -rf "$dir"
done
