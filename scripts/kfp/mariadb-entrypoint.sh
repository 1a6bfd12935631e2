#!/bin/sh
# Starts MariaDB configured like the official mysql image, with the variables KFP's manifests
# set: on an empty data folder it creates the system tables and a `root` that logs in from any
# host, with MYSQL_ROOT_PASSWORD, or with no password when MYSQL_ALLOW_EMPTY_PASSWORD is set
# (KFP's default: its API server logs in as root with an empty password). A data folder that
# already holds databases is used as it is. Arguments go to mariadbd (KFP passes --datadir).
set -eu
datadir=/var/lib/mysql
prev=""
for arg in "$@"; do
  case "$arg" in --datadir=*) datadir="${arg#--datadir=}" ;; esac
  [ "$prev" = --datadir ] && datadir="$arg"
  prev="$arg"
done

if [ ! -d "$datadir/mysql" ]; then
  if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
    echo "mariadb-entrypoint: error: a new database needs MYSQL_ROOT_PASSWORD, or MYSQL_ALLOW_EMPTY_PASSWORD=true for a root without password" >&2
    exit 1
  fi
  echo "mariadb-entrypoint: initialising $datadir"
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  password="$(printf '%s' "${MYSQL_ROOT_PASSWORD:-}" | sed "s/'/''/g")"
  # Bootstrap mode runs these statements before the server listens.
  mariadbd --datadir="$datadir" --bootstrap --skip-grant-tables=0 <<SQL
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED BY '$password';
FLUSH PRIVILEGES;
SQL
fi
exec mariadbd --bind-address=0.0.0.0 --skip-name-resolve "$@"
