"""The model and adapter a command names, checked before any data is loaded, any plan line printed or anything
trained: a local checkpoint is complete, an adapter fits its base, a hub model is cached or on a reachable Hub.

Only the model's config is read here (a few KB); the weights load later, once, where they are used.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from transformers import AutoConfig

from dlm.config import is_api_model
from dlm.data import hub
from dlm.data.hub import close_aliases, not_cached
from dlm.errors import UserError
from dlm.trainers.models import (
    ALIASES,
    _load_error,
    adapter_base,
    adapter_config,
    check_adapter_files,
    check_adapter_fits,
    check_local_model,
    is_adapter_dir,
    remote_code_refused,
    resolve_model,
)


def check_model(
    name: str, peft: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False
) -> None:
    """UserError naming the fix when `name` (and the `peft` adapter on it) cannot be loaded; API models pass."""
    if is_api_model(name):
        return
    resolved = resolve_model(name)  # a missing local path fails here; tiny-gpt2 is built here
    path = Path(resolved)
    if path.is_dir() and is_adapter_dir(path):
        if peft:
            raise UserError(
                f"'{name}' is already a LoRA adapter; pass its base as --model and the adapter as --peft, "
                "or drop --peft"
            )
        adapter_config(path)
        check_model(adapter_base(path), trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        check_adapter_files(path)
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"'{name}' holds no model (no config.json or adapter_config.json); pass one of its "
                "checkpoint-N folders, or finish the run with `dlm train ... --resume`"
            )
        check_local_model(name, path, allow_pickle, trust_remote_code)
    else:
        _check_hub_model(name, resolved, trust_remote_code)
    if peft:
        if not Path(peft, "adapter_config.json").is_file():
            raise UserError(
                f"adapter '{peft}' not found (no adapter_config.json); --peft takes the output_dir of "
                "`dlm train --lora`"
            )
        adapter_config(peft)
        check_adapter_files(peft)
        check_adapter_fits(peft, resolved, name, trust_remote_code)


def _check_hub_model(name: str, resolved: str, trust_remote_code: bool) -> None:
    """Cached, or fetchable: the Hub is asked once whether it is reachable (dlm/data/hub.py), then for the config."""
    try:
        cached = isinstance(try_to_load_from_cache(resolved, "config.json"), str)
    except HFValidationError:  # spaces, '..', too long: no hub id either
        raise UserError(
            f"model '{name}' is neither a local directory, an alias ({', '.join(ALIASES)}, tiny-gpt2) nor a "
            "hub id (owner/name)" + "".join(f"; did you mean '{c}'?" for c in close_aliases(name))
        ) from None
    if not hub.online():
        if cached:
            hub.note_working_offline(f"model '{name}'")
            return
        raise UserError(not_cached(name, resolved, hub.why_offline()))
    try:
        AutoConfig.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise UserError(_load_error(name, resolved, err)) from None
    except ValueError as err:  # a repo with its own modeling code, without --trust-remote-code
        if "trust_remote_code" not in str(err):
            raise
        raise remote_code_refused(name) from None
