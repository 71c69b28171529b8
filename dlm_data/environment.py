"""Secrets out of reach of model-generated code: before `--allow-code-execution` runs a program the model wrote,
dlm forgets its secrets (tokens, API keys) - from os.environ and from the process's initial environment block,
which any process of the same user can read as /proc/<pid>/environ whatever os.environ says later."""
from __future__ import annotations

import ctypes
import os

from dlm_data.records import SECRET_ENV_HINTS


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
