"""Is the Hugging Face Hub reachable? Asked once per process, with one short request, before the first thing that
needs the Hub (a hub model, a dataset without a local snapshot, a built-in lm-eval task). `preflight` asks it for
`dlm train / eval / run` before they import torch, transformers and lm-eval, so the answer comes in seconds.

Without this, an unreachable Hub (no network, a firewall, a wrong HF_ENDPOINT) costs 25-300 s of the libraries'
"Retrying in 8s" lines per file, and that for a model already in the local cache too. Found unreachable, the
process (and the processes it starts) goes offline, as HF_HUB_OFFLINE=1 would make it: what is cached still
loads at once, and what is not fails in one line that names --data-dir and HF_HUB_OFFLINE.
"""

from __future__ import annotations

import difflib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from dlm.config import LOCAL_MODEL_ALIASES, MODEL_ALIASES, is_api_model
from dlm.data.table import lookup
from dlm.errors import UserError

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


# --- what cannot come from an unreachable Hub, said in one line ------------------------------------------------------
def close_aliases(name: str) -> list[str]:
    """A model alias the user may have meant; never the name typed."""
    aliases = list(MODEL_ALIASES) + list(LOCAL_MODEL_ALIASES)
    if name in aliases or "/" in name:
        return []
    return [c for c in difflib.get_close_matches(name, aliases, n=1, cutoff=0.6) if c != name]


def not_cached(name: str, resolved: str, why: str) -> str:
    """A hub model that cannot be fetched: said plainly when the name is valid (an alias), with a "did you mean"
    only for another name, never the one typed."""
    known = name in MODEL_ALIASES or name in LOCAL_MODEL_ALIASES
    what = f"model '{name}'" + (f" (dlm's alias of {resolved})" if known and resolved != name else "")
    return (
        f"{what} is not in the local cache and {why}; download it where the Hub is reachable "
        f"(`hf download {resolved}`) or pass a local checkpoint directory"
        + "".join(f"; did you mean '{c}'?" for c in close_aliases(name))
        + SKIP_CHECK * found_unreachable()
    )


def no_snapshot(hub_id: str, root: Path | None) -> str:
    where = f" under {root}" if root is not None else ""
    return (
        f"no local snapshot of {hub_id}{where} and {why_offline()}; pass --data-dir DIR with DIR/{hub_id} (e.g. "
        f"`hf download --repo-type dataset {hub_id} --local-dir DIR/{hub_id}`), or go online"
        + SKIP_CHECK
        * found_unreachable()
    )


SKIP_CHECK = " (HF_HUB_OFFLINE=1 skips the Hub check)"


def preflight(model: str | None, datasets: list[str] = (), data_dir: str | None = None) -> None:
    """Before a command's heavy imports: when its model or training data must come from the Hub and are not here,
    ask the Hub now, so an unreachable one is one line within seconds, not after the imports. Offline by choice,
    or everything local: nothing is asked (the full checks run later either way)."""
    if offline_by_choice():
        return
    model_id = _hub_model(model)
    chosen = data_dir or os.environ.get("DLM_DATA_DIR")
    root = Path(chosen).expanduser() if chosen else None
    missing = [
        hub_id for hub_id in (lookup(d).hub_id for d in datasets if d) if root is None or not (root / hub_id).is_dir()
    ]
    if (model_id is None and not missing) or online():
        return
    if model_id is not None:
        raise UserError(not_cached(model, model_id, why_offline()))
    raise UserError(no_snapshot(missing[0], root))


def _hub_model(model: str | None) -> str | None:
    """The hub id `model` means when it is neither local nor cached (None otherwise)."""
    if not model or is_api_model(model) or model in LOCAL_MODEL_ALIASES or Path(model).expanduser().exists():
        return None
    if model.startswith((".", "/", "~")):
        return None  # a missing checkpoint: its own error comes with the full check
    from huggingface_hub import try_to_load_from_cache  # here: 0.4 s that only a hub model needs
    from huggingface_hub.errors import HFValidationError

    resolved = MODEL_ALIASES.get(model, model)
    try:
        return None if isinstance(try_to_load_from_cache(resolved, "config.json"), str) else resolved
    except HFValidationError:
        return None  # not a hub id: the full check names the mistake
