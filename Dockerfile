# syntax=docker/dockerfile:1
# Portcullis container image: the `portcullis` binary on a distroless, non-root base.
#   docker build -t portcullis .          (or: buildah build -t portcullis .)
#   docker run --rm -p 8080:8080 portcullis        # `portcullis dev` on the built-in examples
#
# The pages (askama templates/), the stylesheet (assets/) and the dev examples
# (deploy/examples/) are compiled into the binary, so the runtime image holds only the binary.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Dependencies first, in their own layer: built against stub sources, so this layer is
# reused until Cargo.toml or Cargo.lock change. Every target that Cargo.toml names
# explicitly ([[bin]], [[bench]], [[test]], [[example]]) gets a stub too, or Cargo refuses
# to load the manifest.
COPY Cargo.toml Cargo.lock ./
RUN set -eu; \
    mkdir -p src; \
    echo 'fn main() {}' > src/main.rs; \
    touch src/lib.rs; \
    awk '/^\[\[(bin|bench|test|example)\]\]/ { kind = substr($0, 3, length($0) - 4); name = ""; next } \
         /^\[/ { kind = "" } \
         kind != "" && /^name *=/ { split($0, parts, "\""); name = parts[2]; dir = (kind == "bin" ? "src/bin" : kind == "bench" ? "benches" : kind == "test" ? "tests" : "examples"); print dir "/" name ".rs" } \
         kind != "" && /^path *=/ { split($0, parts, "\""); print parts[2] }' Cargo.toml \
      | while read -r stub; do mkdir -p "$(dirname "$stub")"; [ -e "$stub" ] || echo 'fn main() {}' > "$stub"; done; \
    cargo build --release --locked --bin portcullis; \
    rm -rf src benches tests examples

# The application itself.
COPY src src
COPY templates templates
COPY assets assets
COPY deploy/examples deploy/examples
# Cargo decides by modification time; make sure the stubs' build is not taken as current.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin portcullis \
 && install -D -m 0755 target/release/portcullis /out/portcullis

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="Portcullis" \
      org.opencontainers.image.description="A Kubernetes-native OpenID Connect provider" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/portcullis /usr/local/bin/portcullis
# 65532 is distroless's `nonroot`; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["portcullis"]
CMD ["dev", "--listen", "0.0.0.0:8080", "--issuer", "http://127.0.0.1:8080"]
