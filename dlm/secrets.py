"""Secrets: what counts as one, scrubbing them out of everything dlm writes or prints, and keeping them out of reach
of model-generated code.

- `scrub(value)`: every secret of the environment (by variable name: TOKEN, KEY, SECRET, PASSWORD, CREDENTIAL) and
  every key-shaped string (Hugging Face, OpenAI, Anthropic) replaced by ***, wherever it appears in a JSON-able
  value (records, model cards, logs, exports).
- `forget_secrets()`: before `--allow-code-execution` runs a program the model wrote, dlm forgets its secrets -
  from os.environ and from the process's initial environment block, which any process of the same user can read
  as /proc/<pid>/environ whatever os.environ says later.
"""

from __future__ import annotations

import ctypes
import os
import re

SECRET_ENV_HINTS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL")
# tokens recognised by their shape even when they are not in this process's environment (Hugging Face, OpenAI,
# Anthropic keys)
SECRET_SHAPES = re.compile(r"\b(?:hf_[A-Za-z0-9]{30,}|sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,})")


def scrub(value, secret_values: set[str] | None = None):
    """Replace every secret from the environment (tokens, API keys) wherever it appears in a JSON-able value."""
    if secret_values is None:
        secret_values = {
            v for k, v in os.environ.items() if any(h in k.upper() for h in SECRET_ENV_HINTS) and v and len(v) >= 8
        }
    if isinstance(value, str):
        for s in secret_values:
            if s in value:
                value = value.replace(s, "***")
        return SECRET_SHAPES.sub("***", value)
    if isinstance(value, dict):
        return {scrub(k, secret_values): scrub(v, secret_values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secret_values) for v in value]
    return value


def secret_names() -> list[str]:
    return [k for k, v in os.environ.items() if v and any(h in k.upper() for h in SECRET_ENV_HINTS)]


def forget_secrets() -> list[str]:
    """Remove every secret variable from this process's environment, the /proc view included; returns the names."""
    names = secret_names()
    values = [os.environ[n] for n in names]
    for name in names:
        os.environ.pop(name, None)  # also unsetenv(): children started from now on never get them
    _blank_initial_environment(values)
    return names


def _blank_initial_environment(values: list[str]) -> None:
    """Overwrite the secret values in the kernel-visible environment block (mm->env_start..env_end, fields 50-51
    of /proc/self/stat) with '*', in place; a no-op where /proc is absent (the block is not readable there)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51, 1-based)
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except (OSError, IndexError, ValueError):
        return
    if not start or end <= start:
        return
    for value in values:
        raw = value.encode()
        offset = block.find(raw)
        while offset >= 0:
            ctypes.memmove(start + offset, b"*" * len(raw), len(raw))
            offset = block.find(raw, offset + len(raw))
