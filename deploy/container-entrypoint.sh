#!/bin/sh
# The image's entry point. With arguments, run them (e.g. a one-off
# `corridor node --dir /srv/corridor init ...`); without, bring the schema of
# $CORRIDOR_SERVICE (node or registry) up to date and serve it under gunicorn.
set -eu
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
case "$CORRIDOR_SERVICE" in
    node|registry) ;;
    *) echo "CORRIDOR_SERVICE must be node or registry, not '$CORRIDOR_SERVICE'" >&2; exit 64 ;;
esac
corridor "$CORRIDOR_SERVICE" --dir /srv/corridor migrate
exec gunicorn -c /opt/corridor/deploy/gunicorn.conf.py --bind 0.0.0.0:8000 "$CORRIDOR_SERVICE.wsgi:app"
