#!/usr/bin/env bash
# The action image's release, one step at a time. The release workflows (.gitea/workflows/release.yaml,
# .github/workflows/release.yaml) call exactly these steps; the test suite (tests/image.rs) runs them
# against a registry on loopback.
#
#   scripts/release-image.sh build IMAGE VERSION     build the Dockerfile for $PLATFORMS into the manifest
#                                                    list IMAGE:VERSION (buildah; local storage)
#   scripts/release-image.sh push IMAGE VERSION      push the list and every image in it to IMAGE:VERSION;
#                                                    prints `digest=sha256:…` (also to $GITHUB_OUTPUT)
#   scripts/release-image.sh pin IMAGE DIGEST        point action.yml's `runs.image` at
#                                                    docker://IMAGE@DIGEST (the release commit's action.yml;
#                                                    $ACTION_YML names another file)
#   scripts/release-image.sh tag VERSION             commit action.yml, tag it vX.Y.Z and move vX (and
#                                                    vX.Y) to it, push the tags to `origin`
#
# Environment:
#   PLATFORMS       comma-separated, default linux/amd64,linux/arm64 (foreign ones need qemu-user-static)
#   BUILDAH_ARGS    global buildah options (e.g. "--root DIR --runroot DIR --storage-driver vfs")
#   PULL            buildah's pull policy for the base images: missing (default), always or never
#                   (never: local stand-ins, see docker/standins.sh)
#   EXTRA_CA_CERTS  PEM text of a TLS-intercepting proxy's CA, for the build stage's crates.io access
#   TLS_VERIFY      false for a plain-HTTP registry (a loopback test registry)
#   REGISTRY_USER, REGISTRY_PASSWORD: when both are set, `push` logs in first (password via stdin)
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a bh_global <<<"${BUILDAH_ARGS:-}"
bh() { buildah "${bh_global[@]}" "$@"; }
die() { echo "release-image: $*" >&2; exit 2; }
need() { [ -n "${1:-}" ] || die "usage: see the header of $0"; }

step="${1:-}"; shift || true
case "$step" in
build)
  image="${1:-}"; version="${2:-}"; need "$image"; need "$version"
  command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
  platforms="${PLATFORMS:-linux/amd64,linux/arm64}"
  extra=()
  [ -z "${EXTRA_CA_CERTS:-}" ] || extra=(--build-arg "EXTRA_CA_CERTS=$EXTRA_CA_CERTS")
  bh manifest rm "$image:$version" >/dev/null 2>&1 || true
  # One build per platform into one manifest list; the classic Dockerfile needs no BuildKit.
  IFS=, read -r -a list <<<"$platforms"
  for platform in "${list[@]}"; do
    echo "release-image: building $image:$version for $platform" >&2
    bh bud --isolation chroot --pull="${PULL:-missing}" --platform "$platform" \
      --manifest "$image:$version" "${extra[@]}" -f Dockerfile . >&2
  done
  ;;
push)
  image="${1:-}"; version="${2:-}"; need "$image"; need "$version"
  tls=(--tls-verify="${TLS_VERIFY:-true}")
  if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
    printf '%s' "$REGISTRY_PASSWORD" | bh login "${tls[@]}" --username "$REGISTRY_USER" --password-stdin "${image%%/*}" >&2
  fi
  digestfile="$(mktemp)"
  trap 'rm -f "$digestfile"' EXIT
  bh manifest push "${tls[@]}" --all --digestfile "$digestfile" "$image:$version" "docker://$image:$version" >&2
  digest="$(cat "$digestfile")"
  case "$digest" in sha256:????????????????????????????????????????????????????????????????) ;;
    *) die "push: no digest from the registry (got '$digest')" ;; esac
  echo "digest=$digest"
  [ -z "${GITHUB_OUTPUT:-}" ] || echo "digest=$digest" >>"$GITHUB_OUTPUT"
  ;;
pin)
  image="${1:-}"; digest="${2:-}"; need "$image"; need "$digest"
  case "$digest" in sha256:*) ;; *) die "pin: '$digest' is not a sha256: digest" ;; esac
  file="${ACTION_YML:-action.yml}"
  [ "$(grep -c '^  image: ' "$file")" = 1 ] || die "pin: $file must have exactly one runs.image line"
  # Only the `runs.image` line changes; the inputs and everything else stay byte for byte.
  sed -i "s|^  image: .*|  image: docker://$image@$digest|" "$file"
  grep "^  image: " "$file" >&2
  ;;
tag)
  version="${1:-}"; need "$version"
  case "$version" in v[0-9]*.[0-9]*.[0-9]*) ;; *) die "tag: '$version' is not vX.Y.Z" ;; esac
  minor="${version%.*}"; major="${version%%.*}"
  git add action.yml
  git -c user.name="${GIT_AUTHOR_NAME:-gitops-deploy release}" \
      -c user.email="${GIT_AUTHOR_EMAIL:-release@noreply.invalid}" \
      commit -q -m "release $version: run the prebuilt image by digest"
  git tag -f "$version"; git tag -f "$minor"; git tag -f "$major"
  git push -f origin "refs/tags/$version" "refs/tags/$minor" "refs/tags/$major"
  ;;
*) die "unknown step '$step' (build, push, pin or tag)" ;;
esac
