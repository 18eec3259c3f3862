"""A local OpenAI-compatible chat server that plays a script of error statuses, for the
`openai` policy's tests (retries, `n`, timeouts) and the critic's (scripted replies), and a
client with fast retries."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from policies.openai import OpenAIPolicy, RetryConfig

from .samples import steps_text


class FakeServer:
    """A local `/v1/chat/completions` server that plays a script of error statuses, then
    answers. Each answer's text is a function of the request's seed and the choice index.
    `honour_n=False` answers one choice whatever `n` asks (like servers without `n`)."""

    def __init__(self, script=(), honour_n=True, delay_first=0.0, reply=None):
        """`reply(body, i)`: the text of choice i (default: a solution chosen by the seed)."""
        self.script, self.honour_n, self.delay_first = list(script), honour_n, delay_first
        self.reply = reply
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    status = server.script.pop(0) if server.script else 200
                    first = len(server.requests) == 1
                if first and server.delay_first:
                    threading.Event().wait(server.delay_first)
                if status != 200:
                    self._send(status, {"error": f"scripted {status}"}, {"Retry-After": "0"})
                    return
                k = body["n"] if server.honour_n else 1
                choices = [{"index": i, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": server.text(body, i)}} for i in range(k)]
                self._send(200, {"choices": choices})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *a: None  # the timed-out request's late reply
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def text(self, body, i):
        if self.reply is not None:
            return self.reply(body, i)
        return steps_text(3, "ABCD"[(body["seed"] + i) % 4], tag=f" s{body['seed'] + i}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = RetryConfig(attempts=4, base_delay=0.01, max_delay=0.05)


def client(server, **kw):
    return OpenAIPolicy("served-model", base_url=server.url, retry=FAST, **kw)
