# Portcullis container image: a static-ish Rust binary on a distroless, non-root base.
# Build: docker build -t portcullis .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src src
COPY templates templates
COPY assets assets
COPY deploy/examples deploy/examples
COPY crds crds
RUN cargo build --release --locked --bin portcullis

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["dev", "--listen", "0.0.0.0:8080"]
