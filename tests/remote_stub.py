"""A stand-in OpenAI-compatible endpoint in a thread: each POST to /v1/chat/completions
takes the next scripted answer (a reply streamed, an error status, a dropped
connection, a stall), or is forwarded to a real server; every request body is kept."""

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chunk(content=None, finish=None, usage=None) -> bytes:
    event = {"object": "chat.completion.chunk",
             "choices": [] if usage else [{"index": 0, "delta": {"content": content} if content else {},
                                           "finish_reason": finish}]}
    if usage:
        event["usage"] = usage
    return f"data: {json.dumps(event)}\n\n".encode()


def streamed(*pieces, finish="stop") -> list[bytes]:
    """A whole streamed reply of `pieces`."""
    return [*(chunk(p) for p in pieces), chunk(finish=finish),
            chunk(usage={"prompt_tokens": 11, "completion_tokens": len(pieces)}), b"data: [DONE]\n\n"]


class Stub:
    """`answers`: a list of what each chat request gets, in turn (the last one repeats):
    ("stream", [bytes...])            the events, then the connection closes normally
    ("drop", [bytes...])              the events, then the connection drops mid-reply
    ("stall", [bytes...], seconds)    the events, then nothing for `seconds`
    ("status", code, body, headers)   an error answer
    ("forward", url)                  the request passed on to `url` (a real server's root)"""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[dict] = []  # chat request bodies, in order
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._plain(404, b'{"error": "no such route"}')

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                answer = stub.answers[min(len(stub.requests), len(stub.answers) - 1)] \
                    if self.path == "/v1/chat/completions" else None
                if answer is not None and answer[0] == "forward" or answer is None and stub.upstream:
                    return self._forward(answer[1] if answer else stub.upstream, body)
                if answer is None:
                    return self._plain(404, b'{"error": "no such route"}')
                stub.requests.append(json.loads(body))
                kind = answer[0]
                if kind == "status":
                    _, code, payload, headers = answer
                    return self._plain(code, json.dumps(payload).encode(), headers)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for event in answer[1]:
                    self.wfile.write(event)
                    self.wfile.flush()
                if kind == "stall":
                    time.sleep(answer[2])
                if kind == "drop":  # end the connection without the stream's end
                    self.close_connection = True
                    self.connection.shutdown(2)

            def _plain(self, code, payload, headers=None):
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, upstream, body):
                if self.path == "/v1/chat/completions":
                    stub.requests.append(json.loads(body))
                request = urllib.request.Request(upstream + self.path, data=body,
                                                 headers={"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:
                        code, payload, ctype = response.status, response.read(), response.headers["content-type"]
                except urllib.error.HTTPError as exc:
                    code, payload, ctype = exc.code, exc.read(), "application/json"
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.upstream = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
