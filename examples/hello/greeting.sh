#!/bin/sh
# CGI: shows the clear env value GREETING and whether the secret HELLO_API_TOKEN arrived
# (never its value).
printf 'Content-Type: text/plain\r\n\r\n'
if [ -n "${HELLO_API_TOKEN:-}" ]; then token="set"; else token="missing"; fi
printf '%s from hello; HELLO_API_TOKEN is %s\n' "${GREETING:-hello}" "$token"
