"""The service's wire format: one JSON object per line, UTF-8, both ways.

A client sends one request {"command", "request", "cwd", "env", "version",
"keep_alive", "terminal"}; the service answers with lines {"out": text} and
{"err": text} (what the command prints on stdout and stderr, rendered for the
client's terminal), then exactly one of {"exit": code}, {"error": message} (a
one-line error: exit 2) or {"fallback": reason} (this service cannot answer for
that client: it runs the command itself). A connection closed before that last
line means the service stopped mid-request.
"""

import json
import socket


def send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n")


def lines(conn: socket.socket):
    """The messages arriving on `conn`, until it closes."""
    buffer = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line.decode("utf-8", "surrogateescape"))
