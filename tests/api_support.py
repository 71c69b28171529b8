"""A real OpenAI-compatible server for the API-model tests (`transformers serve` with tiny-gpt2 on 127.0.0.1),
and a small fault-injecting proxy in front of it that counts what reaches it.

The proxy forwards POSTs to the server, rewriting `model` to the one the server has (so `openai:gpt-4o-...`
requests can be answered by tiny-gpt2), and follows a script of faults: "429" (with Retry-After: 1), "500",
"drop" (closes the connection without an answer), "slow" (answers after a pause) or "ok", one per request in
arrival order, then "ok". It keeps every payload and Authorization header it saw.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVER_START_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, seconds: float, process=None) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {seconds} s")


class Served:
    """`transformers serve MODEL_DIR` on a free port; .url is the /v1 root."""

    def __init__(self, model_dir: Path, log: Path):
        self.model_dir = str(model_dir)
        self.port = free_port()
        self.log = open(log, "w")
        command = [
            sys.executable,
            "-c",
            "from transformers.cli.transformers import main; main()",
            "serve",
            self.model_dir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        wait_healthy(f"http://127.0.0.1:{self.port}/health", SERVER_START_S, self.process)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class FaultProxy:
    def __init__(self, upstream: str, served_model: str, faults: list[str] | None = None, slow_s: float = 0.3):
        self.upstream, self.served_model = upstream.rstrip("/"), served_model
        self.faults, self.slow_s = list(faults or []), slow_s
        self.lock = threading.Lock()
        self.arrived = 0  # POSTs that reached the proxy
        self.answered = 0  # answers passed back with status 200
        self.payloads: list[dict] = []
        self.authorizations: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with proxy.lock:
                    proxy.arrived += 1
                    proxy.payloads.append(body)
                    proxy.authorizations.append(
                        self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
                    )
                    fault = proxy.faults.pop(0) if proxy.faults else "ok"
                if fault == "429":
                    return self._reply(429, {"error": "rate limited"}, {"Retry-After": "1"})
                if fault == "500":
                    return self._reply(500, {"error": "server error"})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_s)
                forwarded = json.dumps({**body, "model": proxy.served_model}).encode()
                request = urllib.request.Request(
                    proxy.upstream + self.path[len("/v1") :],
                    data=forwarded,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=120) as reply:
                    answer = json.loads(reply.read())
                with proxy.lock:
                    proxy.answered += 1
                self._reply(200, answer)

            def _reply(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(data)),
                    **(headers or {}),
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a misbehaving server: no model, every answer scripted ----------------------------------------------------
def chat_answer(content="positive", prompt_tokens=7, completion_tokens=1, choices=None) -> dict:
    """An OpenAI chat-completions answer."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": "scripted",
        "choices": choices
        if choices is not None
        else [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


BAD_ANSWERS = {  # HTTP 200, and not an answer: each must be an error, retried, never scored or cached
    "error-200": json.dumps({"error": {"message": "upstream overloaded", "type": "server_error"}}).encode(),
    "empty-choices": json.dumps({**chat_answer(), "choices": []}).encode(),
    "null-content": json.dumps(
        chat_answer(choices=[{"index": 0, "message": {"role": "assistant", "content": None}}])
    ).encode(),
    "choices-dict": json.dumps({**chat_answer(), "choices": {"0": {"message": {"content": "positive"}}}}).encode(),
    "negative-usage": json.dumps(chat_answer(prompt_tokens=-5, completion_tokens=-1)).encode(),
    "malformed-json": b'{"choices": [{"index": 0, "message": {"content": "posi',
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
}


class ScriptedServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers every POST from a script, one step per request in
    arrival order, then "ok": "ok" (a valid answer whose content is `content`), any key of BAD_ANSWERS (HTTP 200),
    "drop" (closes the connection), "drip" (the whole HTTP answer one byte every `drip_s` seconds, status line
    included), "401-echo" (a gateway's 401 that quotes the Authorization header it got). Counts what arrives."""

    def __init__(self, script: list[str] | None = None, content: str = "positive", drip_s: float = 5.0):
        self.script, self.content, self.drip_s = list(script or []), content, drip_s
        self.lock = threading.Lock()
        self.arrived = 0
        self.steps: list[str] = []
        self.authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.arrived += 1
                    step = server.script.pop(0) if server.script else "ok"
                    server.steps.append(step)
                    server.authorizations.append(self.headers.get("Authorization") or "")
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if step == "401-echo":
                    body = json.dumps({"error": f"invalid key: {self.headers.get('Authorization')}"}).encode()
                    return self._send(401, body)
                if step == "drip":
                    return self._drip(json.dumps(chat_answer(server.content)).encode())
                body = BAD_ANSWERS.get(step) or json.dumps(chat_answer(server.content)).encode()
                self._send(200, body, "text/html" if step == "html" else "application/json")

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drip(self, body: bytes):
                raw = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                self.close_connection = True
                try:
                    for i in range(len(raw)):
                        self.wfile.write(raw[i : i + 1])
                        self.wfile.flush()
                        time.sleep(server.drip_s)
                except OSError:  # the client gave up: what this step is for
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
