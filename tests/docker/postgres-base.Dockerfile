# Stand-in for the official postgres:$PG_MAJOR-$DEBIAN image on a machine without an image
# registry (tests/docker.sh): Debian's own postgresql-$PG_MAJOR (17 on trixie, 15 on bookworm)
# and an entrypoint that does what the official one does for these tests (initdb with
# POSTGRES_PASSWORD on first start, /docker-entrypoint-initdb.d/*.sql, then `postgres` with any
# arguments given).
ARG DEBIAN=trixie
FROM localhost/ettin-debian:${DEBIAN}
ARG PG_MAJOR=17
RUN mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update -q && apt-get install -y -q --no-install-recommends postgresql-${PG_MAJOR} procps \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres /var/run/postgresql /docker-entrypoint-initdb.d
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY tests/docker/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 5432
CMD ["postgres"]
