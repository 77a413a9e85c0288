#!/bin/sh
# Receives a plain row event on stdin; whatever it writes to stderr is its log.
event=$(cat)
echo "order event: $event" >&2
echo '{"handled": true}'
