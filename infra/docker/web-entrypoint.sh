#!/bin/sh
# Entry point of every web container (compose.yaml): gunicorn binds 0.0.0.0 there, which is no address the
# gateway can call, so the instance advertises this container's own IP on the compose network instead (each
# replica has its own). common/gunicorn_conf.py registers DISCOVERY_ADVERTISE_HOST:<bound port> in etcd when
# the variable is set; an explicit value (docker compose run -e ...) is kept.
set -eu
if [ -z "${DISCOVERY_ADVERTISE_HOST:-}" ]; then
    DISCOVERY_ADVERTISE_HOST="$(python -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')"
    export DISCOVERY_ADVERTISE_HOST
fi
exec "$@"
