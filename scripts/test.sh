#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this): installs what the tests
# need when it is missing, then runs the format check, clippy and every test of the workspace.
#
#   Debian packages: git (with git-http-backend), buildah, debootstrap, docker-registry, skopeo (the
#                    image tests: tests/image.rs); kubectl (the kustomize oracle and the real
#                    `kubectl rollout status`) from the configured apt sources when it is missing.
#   Python packages: none today (python3 itself is used by no test).
#
# Nothing is skipped: a tool that cannot be installed stops the run here, naming it.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
missing=()
for pair in git:git buildah:buildah debootstrap:debootstrap docker-registry:docker-registry \
            skopeo:skopeo kubectl:kubectl; do
  tool="${pair%%:*}" package="${pair#*:}"
  command -v "$tool" >/dev/null || missing+=("$package")
done
# PyYAML: the independent YAML 1.1 reader of the values vectors (tests/oracle/pyyaml_values.py).
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in git buildah debootstrap docker-registry skopeo kubectl; do
  command -v "$tool" >/dev/null || {
    echo "scripts/test.sh: \`$tool\` is required by the tests and could not be installed (apt-get install $tool)" >&2
    exit 1
  }
done
python3 -c 'import yaml' 2>/dev/null || {
  echo "scripts/test.sh: python3 with PyYAML is required by the tests and could not be installed (apt-get install python3-yaml)" >&2
  exit 1
}
if [ ! -x "$(git --exec-path)/git-http-backend" ]; then
  echo "scripts/test.sh: git http-backend is required by the sandbox and is missing (apt-get install git)" >&2
  exit 1
fi
start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# One build: after the tests, neither `cargo build` nor the demo's binary compiles anything (README).
rebuilt="$(cargo build --workspace --locked 2>&1; cargo build --locked --bin gitops-sandbox 2>&1)"
if grep -q '^ *Compiling' <<<"$rebuilt"; then
  echo "scripts/test.sh: a build after the tests recompiled crates (feature sets differ; see sandbox/Cargo.toml):" >&2
  grep '^ *Compiling' <<<"$rebuilt" >&2
  exit 1
fi
echo "scripts/test.sh: passed in $(( $(date +%s) - start )) s (after installing)" >&2
