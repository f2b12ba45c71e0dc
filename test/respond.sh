#!/bin/sh
# respond.sh FILE [SIZE]: answers one HTTP request (socat EXEC:) with FILE.
# It reads the request head first: closing with unread data would reset the
# connection. SIZE saves a process start where those are slow (the test VM).
while IFS= read -r line && [ ${#line} -gt 1 ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Length: %s\r\n\r\n' "${2:-$(wc -c <"$1")}"
exec cat "$1"
