#!/bin/sh
# The container's entrypoint: prepare /data, upgrade the database before the web server
# starts, then replace this shell with the command (exec), so that the command, not this
# shell, gets the container's signals (SIGTERM from `docker stop`, SIGHUP).
set -eu

# Files the app makes (database, exports, backups) are for its own user only.
umask 027
mkdir -p "${TMPDIR:-/data/tmp}"
chmod 0700 "${TMPDIR:-/data/tmp}"

if [ "${1:-}" = "gunicorn" ]; then
    # Only the web server upgrades (the other services start once it is ready, so two never
    # race). A database that is current is left alone; a failed upgrade stops the start.
    flask --app pro_app db upgrade
fi

exec "$@"
