# The gitops-deploy action image.
#
# Classic-builder compatible on purpose: Gitea's and Forgejo's runners build `runs.image: Dockerfile`
# through the Docker Engine API without BuildKit, so no syntax directive, no mount or heredoc RUN forms.
# Prefer a prebuilt image (`runs.image: docker://…:<version>`, see the README) so jobs never build this.

# --- build: a static musl binary -------------------------------------------------------------------
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Size over speed for the image: a deploy waits on the network, never on the CPU. (Cargo.toml's release
# profile stays as it is for local builds and benchmarks.)
ENV CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# Dependency layer: the manifests plus empty targets, built once and cached until Cargo.lock changes.
# Bench targets are declared in Cargo.toml, and cargo refuses a manifest whose declared targets are
# missing, so they come along (they are small and rarely change).
COPY Cargo.toml Cargo.lock ./
COPY sandbox/Cargo.toml sandbox/Cargo.toml
COPY benches benches
RUN mkdir -p src sandbox/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs sandbox/src/lib.rs \
 && echo 'fn main() {}' > sandbox/src/main.rs \
 && cargo build --release --locked -p gitops-deploy --bin gitops-deploy \
 && rm -rf src sandbox/src

# Source layer.
COPY src src
COPY sandbox/src sandbox/src
# touch: the dummy targets are newer than the copied sources' mtimes would suggest to cargo.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p gitops-deploy --bin gitops-deploy \
 && cp target/release/gitops-deploy /gitops-deploy

# --- rootfs: git (for `transport: git`) with exactly the libraries it loads, and the CA bundle ------
FROM alpine:3 AS rootfs
COPY docker/make-rootfs.sh /make-rootfs.sh
RUN apk add --no-cache git ca-certificates && sh /make-rootfs.sh /rootfs

# --- runtime: nothing but the binary, git and CA certificates ---------------------------------------
FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=build /gitops-deploy /usr/bin/gitops-deploy
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt \
    PATH=/usr/bin
ENTRYPOINT ["/usr/bin/gitops-deploy"]
