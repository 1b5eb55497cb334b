"""The one-shot service: `pml ask` and `pml kb search` answered by a background process
that keeps models and embedders loaded (as `ollama run` talks to `ollama serve`).

One service per `PML_HOME`, on a Unix socket only its user can reach, started by the
first command that needs it and stopped after an idle time. The client side
(place.py, client.py) uses the standard library only, so a warm command imports no
model library at all; the service (server.py) runs the very functions the CLI runs
in-process, its output rendered for the client's terminal.
"""
