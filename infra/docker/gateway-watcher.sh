#!/bin/sh
# Entry point of the gateway watcher's container (compose.yaml). The watcher renders nginx's files into the
# volume at $PLATFORM_RUN_DIR, which the nginx container shares; nginx runs there, not here. So, first:
#  - copy the Swagger UI files /docs/ serves (drf-spectacular-sidecar, installed in this image only) into the
#    volume, where the nginx container's adapted config points `/docs/static/`;
#  - put infra/docker/bin first on PATH: its `nginx` does nothing, since the nginx container reloads itself
#    when the rendered files change (the watcher calls `nginx -s reload` after each render on a host).
set -eu
: "${PLATFORM_RUN_DIR:?the volume shared with the nginx container}"
dist="$(python -c 'import pathlib, drf_spectacular_sidecar as s
print(pathlib.Path(s.__file__).parent / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist")')"
rm -rf "$PLATFORM_RUN_DIR/swagger-ui.new"
cp -R "$dist" "$PLATFORM_RUN_DIR/swagger-ui.new"
rm -rf "$PLATFORM_RUN_DIR/swagger-ui"
mv "$PLATFORM_RUN_DIR/swagger-ui.new" "$PLATFORM_RUN_DIR/swagger-ui"
PATH="$(dirname "$0")/bin:$PATH"
export PATH
exec "$@"
