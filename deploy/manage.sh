#!/bin/sh
# manage.py with the installation's environment: `sudo -u syncconsole deploy/manage.sh migrate`.
# Reads /etc/syncconsole/syncconsole.env (or $SYNCCONSOLE_ENV), the file the systemd units read.
set -eu
cd "$(dirname "$0")/.."
set -a
. "${SYNCCONSOLE_ENV:-/etc/syncconsole/syncconsole.env}"
set +a
exec .venv/bin/python manage.py "$@"
