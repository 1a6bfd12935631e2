# KFP's database on kind, where mysql:8.4 cannot be pulled: MariaDB from Debian's packages
# (bookworm has no MySQL server; MariaDB speaks MySQL's protocol and SQL, and KFP 2.17.0's
# PostgreSQL path does not work: see scripts/kfp/README.md). KFP's mysql manifests
# (manifests/kustomize/third-party/mysql) configure the official image by environment, so
# mariadb-entrypoint.sh honours the variables they use. Built by scripts/kfp/support-images.sh.
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
ARG MARIADB_VERSION=10.11
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# uid/gid 999, what KFP's mysql deployment runs as (runAsUser/runAsGroup/fsGroup 999). The
# package is bookworm's (its version is checked below, not pinned: Debian patches it in place).
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 mysql \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/mysql --shell /usr/sbin/nologin mysql \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/lib/mysql/* \
 && mariadbd --version | grep -q "Ver ${MARIADB_VERSION}\." \
 && install -d -o 999 -g 999 -m 0755 /run/mysqld /var/lib/mysql
COPY mariadb-entrypoint.sh /usr/local/bin/mariadb-entrypoint
USER 999:999
EXPOSE 3306
ENTRYPOINT ["/usr/local/bin/mariadb-entrypoint"]
CMD ["--datadir", "/var/lib/mysql"]
