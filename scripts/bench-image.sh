#!/usr/bin/env bash
# Figures of the shipped image for BENCHMARKS.md, side by side for two Dockerfile build profiles:
#   - cold build of the Dockerfile (empty cargo cache and no cached layers: every crate downloaded and
#     compiled), from the local stand-ins of its base images (docker/standins.sh, cached);
#   - image size;
#   - time from container start (`buildah run`, as `docker run`) to the first log line of a deploy run
#     as a runner runs the action (no arguments, INPUT_* only): the first `::add-mask::` line.
# Usage: scripts/bench-image.sh [RUNS]   (alone on the machine: it measures CPU-bound builds)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
store="${IMAGE_STORE:-$PWD/target/image-store}"
export BUILDAH_ARGS="--root $store/root --runroot $store/run --storage-driver vfs"
read -r -a bh <<<"buildah $BUILDAH_ARGS"
STANDIN_CACHE="$PWD/target/standins" docker/standins.sh
ca="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)"

build() { # name dockerfile -> prints seconds
  local start end
  start=$(date +%s.%N)
  "${bh[@]}" bud -q --pull=never --isolation chroot --build-arg "EXTRA_CA_CERTS=$ca" \
    -f "$2" -t "localhost/gitops-deploy:$1" . >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
# The profile the Dockerfile had before (opt-level s, fat LTO, one codegen unit), same file otherwise.
sed -e 's/CARGO_PROFILE_RELEASE_LTO=false/CARGO_PROFILE_RELEASE_LTO=fat/' \
    -e 's/CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16/CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1/' Dockerfile >"$work/Dockerfile.fat"
printf '| Dockerfile profile | cold build | image size | start → first log line (median of %s) |\n| --- | --- | --- | --- |\n' "$runs"
for variant in fat:"$work/Dockerfile.fat" shipped:Dockerfile; do
  name="${variant%%:*}" file="${variant#*:}"
  secs="$(build "$name" "$file")"
  size="$("${bh[@]}" images --format '{{.Size}}' "localhost/gitops-deploy:$name")"
  ctr="$("${bh[@]}" from -q "localhost/gitops-deploy:$name")"
  first_line="$(python3 - "$runs" "${bh[@]}" run --isolation chroot \
      -e GITHUB_ACTIONS=true -e INPUT_TOKEN=bench-token -e INPUT_REPOSITORY=o/r -e INPUT_PATH=p \
      -e INPUT_IMAGE=i -e INPUT_TAG=1 -e INPUT_SERVER_URL=http://127.0.0.1:9 "$ctr" -- /usr/bin/gitops-deploy <<'PY'
import subprocess, sys, time, statistics
runs, cmd = int(sys.argv[1]), sys.argv[2:]
samples = []
for _ in range(runs):
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    samples.append(time.monotonic() - start)
    assert line.startswith("::add-mask::"), line
    p.kill(); p.wait()
print(f"{statistics.median(samples) * 1000:.0f} ms")
PY
)"
  "${bh[@]}" rm "$ctr" >/dev/null
  printf '| %s | %.0f s | %s | %s |\n' "$name" "$secs" "$size" "$first_line"
done
