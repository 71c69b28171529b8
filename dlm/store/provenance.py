"""What produced a result: run ids, timestamps, code and library versions, the machine."""

from __future__ import annotations

import datetime
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from dlm.secrets import scrub

LIBRARIES = ("torch", "transformers", "datasets", "lm_eval", "trl", "peft", "accelerate", "tokenizers")


def timestamp() -> str:
    """`created_at`: local ISO time with microseconds, so records written within one second still sort in the
    order they were made (run ids break ties at random)."""

    return datetime.datetime.now().astimezone().isoformat(timespec="microseconds")


def new_run_id(slug: str = "run") -> str:
    """Sortable and unique even for runs started in the same second by different processes."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", scrub(slug)).strip("-")[:60] or "run"  # a file name: no key in it
    # 32 random bits: two writers in the same second clash with odds ~n^2/2^33, never in practice
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}-{slug}"


def provenance() -> dict:
    """What produced a result: code version, library versions, interpreter, machine."""

    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            libs[name] = None
    try:
        dlm_version = metadata.version("dlm")
    except metadata.PackageNotFoundError:
        dlm_version = None
    return {
        "git_sha": _git_sha(),
        "dlm_version": dlm_version,
        "libraries": libs,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": _device(),
    }


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _device() -> str:
    if "torch" not in sys.modules:  # never import torch just to describe the machine
        return "unknown"
    import torch  # lazy: only once a run has imported it

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"
