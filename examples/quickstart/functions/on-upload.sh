#!/bin/sh
# Receives an S3 event notification on stdin, as S3 sends it to Lambda, and logs what arrived.
event=$(cat)
key=$(printf '%s' "$event" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
size=$(printf '%s' "$event" | sed -n 's/.*"size":\([0-9]*\).*/\1/p')
echo "new photo: $key ($size bytes)" >&2
echo '{"seen": true}'
