# syntax=docker/dockerfile:1
# The sidecar as one executable made by `deno compile`, in an image FROM scratch that holds
# nothing else than that executable, the C libraries and loader it links against and a CA bundle
# (the list is image/files.txt), run as a non-root user. Build from the repository root:
#   docker build -t kubernetes-pod-discovery .
# tests/image_test.ts runs the sidecar from exactly this file set under chroot, against a real
# API server, and checks this Dockerfile against image/files.txt and .deno-version.

# Build stage: Debian 12 (bookworm) at the exact point release tests/image_test.ts runs on, because
# image/files.txt names bookworm's loader and libraries (another release moves them, and the
# scratch image would fail at start with "cannot open shared object file"). Pinned by exact tag
# only: no machine we build on reaches Docker Hub to look up and verify a digest; where one can,
# pin it too (debian:12.11-slim@sha256:...). Platform pinned to linux/amd64: image/files.txt is
# the x86_64 file set, so on arm64 hosts (Apple Silicon, Graviton) Docker builds and runs the
# amd64 image under emulation rather than failing; an arm64 image needs an arm64 file list.
# Deno comes from the npm package `deno` at .deno-version, as tools/deno installs it everywhere.
FROM --platform=linux/amd64 debian:12.11-slim AS build
RUN apt-get update \
  && apt-get install --yes --no-install-recommends ca-certificates nodejs npm \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY .deno-version deno.json deno.lock main.ts ./
COPY lib/ lib/
COPY image/ image/
COPY tools/deno tools/compile.sh tools/image_files.sh tools/
# tools/compile.sh: `deno bundle` (without @kubernetes/client-node, which only kubeconfig mode
# imports), then `deno compile` with the flags of image/deno-flags.txt baked in: --allow-net,
# --allow-read of the service-account mount only, --allow-env of the sidecar's own variables
# only, no run/write/ffi/sys, and a V8 heap limit of 48 MB (see that file for the memory limits
# it fits). tools/image_files.sh then lays out the image's files in /rootfs and fails the build
# if `ldd` on the compiled executable names another set of libraries than image/files.txt.
# Last, the executable runs once from exactly those files as the image's user: an image whose
# executable cannot start is not built.
RUN tools/compile.sh /rootfs/kubernetes-pod-discovery \
  && tools/image_files.sh assemble /rootfs /rootfs/kubernetes-pod-discovery \
  && chroot --userspec=65532:65532 /rootfs /kubernetes-pod-discovery --help >/dev/null

FROM --platform=linux/amd64 scratch
# BEGIN image/files.txt: `tools/image_files.sh dockerfile` prints these lines; a test checks them.
COPY --from=build /rootfs/kubernetes-pod-discovery /kubernetes-pod-discovery
COPY --from=build /rootfs/lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
COPY --from=build /rootfs/lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6
COPY --from=build /rootfs/lib/x86_64-linux-gnu/libdl.so.2 /lib/x86_64-linux-gnu/libdl.so.2
COPY --from=build /rootfs/lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libgcc_s.so.1
COPY --from=build /rootfs/lib/x86_64-linux-gnu/libm.so.6 /lib/x86_64-linux-gnu/libm.so.6
COPY --from=build /rootfs/lib/x86_64-linux-gnu/libpthread.so.0 /lib/x86_64-linux-gnu/libpthread.so.0
COPY --from=build /rootfs/lib/x86_64-linux-gnu/librt.so.1 /lib/x86_64-linux-gnu/librt.so.1
COPY --from=build /rootfs/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# END image/files.txt
# "nonroot" of distroless images; numeric, since there is no /etc/passwd to look a name up in.
USER 65532:65532
# Exec form: the sidecar is PID 1 and handles SIGTERM itself (graceful stop, exit 0).
ENTRYPOINT ["/kubernetes-pod-discovery"]
