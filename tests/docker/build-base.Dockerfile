# Stand-in for rust:1.95-$DEBIAN on a machine without an image registry (tests/docker.sh): plain
# Debian from debootstrap; the host's Rust toolchain is mounted into the build's RUN steps.
ARG DEBIAN=trixie
FROM localhost/ettin-debian:${DEBIAN}
RUN apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates make gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/root/.rustup PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
