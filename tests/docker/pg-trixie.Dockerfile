# The test bench for Postgres 17 (tests/pg-container.sh): Debian 13 (trixie), whose own packages
# carry Postgres 17 and pgvector 0.8 (they need glibc 2.38, so they cannot run on the Debian 12
# host), with what `make install` and the test suites need. Debian 12's postgresql-15 joins it
# (pinned low, only that package and its libraries) so pg_upgrade 15 → 17 has both servers in one
# place. The host's Rust toolchain and caches are mounted at run time, not copied.
FROM localhost/ettin-debian:trixie
RUN echo "deb http://deb.debian.org/debian bookworm main" >/etc/apt/sources.list.d/bookworm.list \
 && echo "deb http://deb.debian.org/debian-security bookworm-security main" >>/etc/apt/sources.list.d/bookworm.list \
 && printf 'Package: *\nPin: release n=bookworm\nPin-Priority: 100\n' >/etc/apt/preferences.d/bookworm \
 && printf 'Package: *\nPin: release n=bookworm-security\nPin-Priority: 100\n' >>/etc/apt/preferences.d/bookworm \
 && mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      postgresql-17 postgresql-server-dev-17 postgresql-17-pgvector postgresql-client-17 postgresql-15/bookworm-security \
      libclang-dev clang pkg-config libssl-dev sudo dpkg-dev build-essential make unzip ca-certificates zstd \
      python3 python3-pip python3-venv iproute2 procps pgpool2 \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/root/.rustup PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
