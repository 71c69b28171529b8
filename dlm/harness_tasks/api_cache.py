"""Every API response, stored the moment it arrives, so a killed run pays only for what it had not received.

One SQLite file (`$DLM_CACHE/api/responses.sqlite`, WAL mode, one commit per response). The key is the SHA-256 of
everything that decides the answer: provider, base URL, model name, task and task version, and the exact payload
sent (messages with the system instruction and the rendered prompt, max tokens, temperature, stop sequences).
lm-eval's own cache keys only the request arguments, so two models, servers or system prompts would share answers.
No header and no key is ever part of a key or a value.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from dlm.trainers.tiny import cache_root

SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL)"


def default_path() -> Path:

    return cache_root() / "api" / "responses.sqlite"


def request_key(provider: str, base_url: str, model: str, task: str | None, version: str | None, payload: dict) -> str:
    blob = json.dumps(
        {
            "provider": provider,
            "base_url": base_url,
            "model": model,
            "task": task,
            "version": version,
            "payload": payload,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Thread-safe get/put of JSON responses by key; `None` path = no cache (--no-cache): nothing is kept."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._db = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()

    def get(self, key: str) -> dict | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: dict) -> None:
        if self._db is None:
            return

        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                (key, json.dumps(response, ensure_ascii=False), time.time()),
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
