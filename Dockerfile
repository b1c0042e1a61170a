# mlsize as a container image, built from source (needs network access to
# crates.io and Docker Hub): a static binary, CA certificates for registries,
# a non-root user, nothing else. One layer.
#
#   docker build -t mlsize .
#   docker run --rm -v "$PWD:/w" mlsize analyze app.tar
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" mlsize analyze docker-daemon:app:latest
#
# Without network (our CI): build the binary outside and use
# docker/Dockerfile.prebuilt through docker/build-prebuilt.sh (README, "Container image").
FROM rust:1.88-bookworm AS build
# A static glibc binary (static-pie): glibc >= 2.34 has its "files" and "dns"
# name services built in, so /etc/hosts and /etc/resolv.conf work in scratch
# without NSS modules (tests/container.rs resolves a registry by name).
WORKDIR /src
COPY . .
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --release --target "$(uname -m)-unknown-linux-gnu" \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/w /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && cp "target/$(uname -m)-unknown-linux-gnu/release/mlsize" /rootfs/mlsize \
 && cp docker/passwd docker/group /rootfs/etc/ \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /w
ENTRYPOINT ["/mlsize"]
CMD ["--help"]
