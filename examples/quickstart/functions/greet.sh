#!/bin/sh
# Reads {"name": "…"} and answers with a greeting.
name=$(sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
echo "greeting ${name:-world}" >&2
printf '{"greeting": "hello, %s"}\n' "${name:-world}"
