#!/usr/bin/env bash
# Measures the action's figures for BENCHMARKS.md: release binary size, runtime image size, startup
# (`gitops-deploy --version`, hyperfine) and peak memory of a full deploy against the sandbox
# (/usr/bin/time -v), run exactly as a runner runs the action (no arguments, INPUT_* only).
# Needs hyperfine, GNU time (/usr/bin/time), buildah and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build --release --locked -q --target "$triple" -p gitops-deploy --bin gitops-deploy
bin="target/static/$triple/release/gitops-deploy"
cargo build --release --locked -q -p gitops-sandbox --bin gitops-sandbox

echo "release binary (static, stripped): $(stat -c %s "$bin") bytes"

work="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Runtime image: FROM scratch + the binary + CA bundle + /tmp, as tests/runner.rs builds it.
bh=(buildah --root "$work/store" --runroot "$work/run" --storage-driver vfs)
mkdir -m 1777 "$work/tmp"
ctr="$("${bh[@]}" from scratch)"
"${bh[@]}" copy "$ctr" "$bin" /usr/bin/gitops-deploy >/dev/null
"${bh[@]}" copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
"${bh[@]}" copy "$ctr" "$work/tmp" /tmp >/dev/null
"${bh[@]}" commit -q "$ctr" localhost/gitops-deploy:bench >/dev/null
echo "runtime image (scratch + binary + CA bundle): $("${bh[@]}" images --format '{{.Size}}' localhost/gitops-deploy:bench)"
# The git part of the Dockerfile's image, laid out by the same script on this host's git.
GIT="$(command -v /usr/bin/git || command -v git)" sh docker/make-rootfs.sh "$work/gitroot" >/dev/null
echo "git + libraries + CA rootfs on this host (docker/make-rootfs.sh): $(du -sb "$work/gitroot" | cut -f1) bytes"

hyperfine -N --warmup 50 --runs 500 "$bin --version"

# A full deploy (publish → Argo CD → rollout → HTTP) against the sandbox, under /usr/bin/time -v.
target/release/gitops-sandbox serve > "$work/sandbox.json" &
sandbox_pid=$!
for _ in $(seq 100); do [ -s "$work/sandbox.json" ] && break; sleep 0.1; done
mkdir -p "$work/act"
env_file="$work/env"
python3 - "$work/sandbox.json" "$work/act" > "$env_file" <<'PY'
import json, shlex, sys
s = json.load(open(sys.argv[1]))
act = sys.argv[2]
env = {
    "GITHUB_ACTIONS": "true", "GITEA_ACTIONS": "true",
    "GITHUB_OUTPUT": f"{act}/outputcmd.txt", "GITHUB_STEP_SUMMARY": f"{act}/summary.md",
    "INPUT_SERVER_URL": s["gitea_url"], "INPUT_REPOSITORY": s["repository"],
    "INPUT_BRANCH": s["branch"], "INPUT_PATH": s["path"], "INPUT_IMAGE": s["image"],
    "INPUT_TAG": "1.1.0", "INPUT_TOKEN": s["token"], "INPUT_TRANSPORT": "api",
    "INPUT_ARGOCD_SERVER": s["argocd_url"], "INPUT_ARGOCD_TOKEN": s["argocd_token"],
    "INPUT_ARGOCD_APP": s["argocd_app"], "INPUT_KUBECONFIG": s["kubeconfig"],
    "INPUT_ROLLOUT": "deployment/web", "INPUT_NAMESPACE": "web",
    "INPUT_HEALTH_URL": s["app_url"] + "/version", "INPUT_HEALTH_EXPECT_BODY": "{tag}",
    "INPUT_TIMEOUT": "60s",
}
for k, v in env.items():
    print(f"export {k}={shlex.quote(v)}")
PY
# Through the environment, not argv: the tokens stay off every command line.
( . "$env_file" && exec /usr/bin/time -v "$bin" ) > /dev/null 2> "$work/deploy.log" || {
  cat "$work/deploy.log" >&2
  exit 1
}
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/deploy.log"
grep -E "^(result|duration_seconds)=" "$work/act/outputcmd.txt"
