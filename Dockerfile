# The gitops-deploy action image.
#
# Classic-builder compatible on purpose: Gitea's and Forgejo's runners build `runs.image: Dockerfile`
# through the Docker Engine API without BuildKit, so no syntax directive, no mount or heredoc RUN forms.
# Released versions of the action run a prebuilt image by digest (see RELEASING.md), so jobs never build
# this; the test suite builds this exact file from local stand-ins of both base images
# (docker/standins.sh) and runs the result as a runner does.

# --- build: a static glibc binary ------------------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Chosen by measurement (BENCHMARKS.md, "Image build profile"): no cross-crate LTO and parallel codegen
# keep a cold build of every dependency within a few minutes on 2 cores; `s` keeps the binary small.
ENV CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_TERM_COLOR=never
# Behind a TLS-intercepting proxy, crates.io is reached only when its CA is trusted: pass the PEM text
# with `--build-arg EXTRA_CA_CERTS="$(cat proxy-ca.pem)"`. A CA is public; it stays in this stage.
ARG EXTRA_CA_CERTS=
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/extra.crt \
      && update-ca-certificates >/dev/null; \
    fi

# Dependency layer: the manifests plus empty targets, built once and cached until Cargo.lock changes.
# Bench targets are declared in Cargo.toml and cargo refuses a manifest whose declared targets are
# missing, so they come along (they are small and rarely change). `--target` (the host's own triple)
# keeps `+crt-static` off build scripts and proc macros, which cannot be static.
COPY Cargo.toml Cargo.lock ./
COPY sandbox/Cargo.toml sandbox/Cargo.toml
COPY benches benches
RUN mkdir -p src sandbox/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs sandbox/src/lib.rs \
 && echo 'fn main() {}' > sandbox/src/main.rs \
 && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
      -p gitops-deploy --bin gitops-deploy --target "$(uname -m)-unknown-linux-gnu" \
 && rm -rf src sandbox/src

# Source layer.
COPY src src
COPY sandbox/src sandbox/src
# touch: the dummy targets are newer than the copied sources' mtimes would suggest to cargo.
RUN touch src/main.rs src/lib.rs \
 && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
      -p gitops-deploy --bin gitops-deploy --target "$(uname -m)-unknown-linux-gnu" \
 && cp "target/$(uname -m)-unknown-linux-gnu/release/gitops-deploy" /gitops-deploy

# --- rootfs: git (for `transport: git`) with exactly the libraries it loads, and the CA bundle ------
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY docker/make-rootfs.sh /make-rootfs.sh
RUN sh /make-rootfs.sh /rootfs

# --- runtime: nothing but the binary, git and CA certificates ---------------------------------------
FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=build /gitops-deploy /usr/bin/gitops-deploy
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt \
    PATH=/usr/bin
ENTRYPOINT ["/usr/bin/gitops-deploy"]
