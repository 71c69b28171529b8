"""Is the Hugging Face Hub reachable? Asked once per process, with one short request, before the first thing that
needs the Hub (a hub model, a dataset without a local snapshot, a built-in lm-eval task).

Without this, an unreachable Hub (no network, a firewall, a wrong HF_ENDPOINT) costs 25-300 s of the libraries'
"Retrying in 8s" lines per file, and that for a model already in the local cache too. Found unreachable, the
process (and the processes it starts) goes offline, as HF_HUB_OFFLINE=1 would make it: what is cached still
loads at once, and what is not fails in one line that names --data-dir and HF_HUB_OFFLINE.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

CHECK_TIMEOUT_S = 5.0  # a reachable Hub answers a HEAD request well within this
DEFAULT_ENDPOINT = "https://huggingface.co"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")

_found: dict[str, str | None] = {}  # endpoint -> None (reachable) or why it is not
_noted: list[str] = []  # what was used from the cache when the note of working offline was printed


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_by_choice() -> bool:
    """HF_HUB_OFFLINE (or its datasets / transformers spellings) set by the user."""
    return any((os.environ.get(name) or "").strip().lower() in _TRUE for name in _OFFLINE_VARS)


def online() -> bool:
    """True when the Hub may be used: not offline by choice, and reachable (checked once per process; found
    unreachable, the process goes offline)."""
    url = endpoint()
    if _found.get(url):
        return False
    if offline_by_choice():
        return False
    if url not in _found:
        _found[url] = _probe(url)
        if _found[url] is not None:
            go_offline()
    return _found[url] is None


def found_unreachable() -> bool:
    return bool(_found.get(endpoint()))


def note_working_offline(what: str) -> None:
    """Once per process, when something cached is used because the Hub was found unreachable (an error says it
    itself, in its one line)."""
    if found_unreachable() and not _noted:
        _noted.append(what)
        print(
            f"warning: the Hugging Face Hub ({endpoint()}) is unreachable ({_found[endpoint()]}); {what} comes from "
            "the local cache, and so will everything else (HF_HUB_OFFLINE=1 skips this check)",
            file=sys.stderr,
            flush=True,
        )


def why_offline() -> str:
    """The reason the Hub is not used, for an error message that must also name the fix."""
    url = endpoint()
    if _found.get(url):
        return f"the Hugging Face Hub ({url}) is unreachable ({_found[url]})"
    return "the Hub is offline (HF_HUB_OFFLINE)"


def _probe(url: str) -> str | None:
    """None when `url` answers at all (any HTTP status: a mirror's root may well be a 404), else why not."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "dlm"})
    try:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT_S):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"no answer within {CHECK_TIMEOUT_S:g} s"
        return str(getattr(reason, "strerror", None) or reason)


def go_offline() -> None:
    """HF_HUB_OFFLINE=1 for this process and its children; the libraries read it when imported, so the ones
    already imported are switched too."""
    for name in _OFFLINE_VARS:
        os.environ[name] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets

        datasets.config.HF_HUB_OFFLINE = True
        datasets.config.HF_DATASETS_OFFLINE = True
