# syntax=docker/dockerfile:1
# Release image: a statically linked sign-action on `scratch`, plus CA certificates and a passwd
# naming a non-root user. Cross-compiles on the build platform (no QEMU for Rust) for each
# TARGETPLATFORM. scripts/action-env-test builds with the same RUSTFLAGS and --target.
FROM --platform=$BUILDPLATFORM rust:1-bookworm AS build
ARG TARGETARCH
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; pkgs="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported $TARGETARCH"; exit 1 ;; \
    esac; \
    apt-get update; apt-get install -y --no-install-recommends $pkgs ca-certificates; \
    rustup target add "$triple"; echo "$triple" > /triple
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc
WORKDIR /src
COPY . .
RUN set -eux; triple=$(cat /triple); \
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$triple"; \
    mkdir -p /out/etc/ssl/certs; \
    cp "target/$triple/release/sign-action" /out/sign-action; \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    echo 'root:x:0:0:root:/:/sign-action' > /out/etc/passwd; \
    echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sign-action' >> /out/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group

# scratch, not distroless: the binary needs no libc, so the image holds exactly three files.
# No USER line: GitHub runs Docker actions as the image's default user, and only root may write
# the runner's /github/workspace and /github/file_commands mounts. Outside Actions, run with
# `--user 65532` (nonroot).
FROM scratch
COPY --from=build /out/ /
ENTRYPOINT ["/sign-action"]
LABEL org.opencontainers.image.source="https://github.com/org/sign-action" \
      org.opencontainers.image.description="Sign and verify OCI artifacts with Notary Project signatures" \
      org.opencontainers.image.licenses="Apache-2.0"
