# curtain's own image: nothing but the static binary at /curtain, for users to
# copy into theirs (`COPY --from=<this image> /curtain /curtain`, see
# Dockerfile.example) or to run as is.
#
#   buildah bud -t curtain:0.1.0 .          (or: docker build -t curtain:0.1.0 .)
#
# Stage `build` compiles curtain's static binary in the Rust image (glibc,
# crt-static, no PIE: it runs with no libc, no shell and no /dev). Where that
# image cannot be pulled (no registry, as in curtain's CI), build the binary
# with scripts/build-static.sh first and take it from the context instead:
#
#   scripts/build-static.sh && buildah bud --build-arg CURTAIN_BINARY=prebuilt -t curtain:0.1.0 .
ARG CURTAIN_BINARY=build

# 1.90 or later: rust-lld links the functions curtain runs first (see
# scripts/build-static.sh), which the README's figures assume.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/build-static.sh && cp target/x86_64-unknown-linux-gnu/release/curtain /curtain

FROM scratch AS prebuilt
COPY target/x86_64-unknown-linux-gnu/release/curtain /curtain

FROM ${CURTAIN_BINARY} AS binary

FROM scratch
COPY --from=binary /curtain /curtain
ENTRYPOINT ["/curtain", "--"]
