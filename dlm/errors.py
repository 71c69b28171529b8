"""The one exception type for mistakes a user can make (bad flag, unknown dataset, missing checkpoint...).

The CLI prints its message as one line and exits with code 2; anything else is a bug and keeps its traceback.
Messages name the fix: "unknown dataset 'imbd'; did you mean 'stanfordnlp/imdb'? (dlm data list shows all)".
"""

from __future__ import annotations

import difflib


class UserError(Exception):
    """A mistake in the user's input. The message is shown as is, so it must say how to fix it."""


def suggest(name: str, choices, what: str, hint: str = "") -> UserError:
    """Build an 'unknown X' error that proposes the closest valid names."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:  # ids like 'imdb' vs 'stanfordnlp/imdb': match on the last path component too
        close = [c for c in choices if c.split("/")[-1].lower() == name.split("/")[-1].lower()][:3]
    close = [c for c in close if c != name]  # never the name that was typed
    msg = f"unknown {what} '{name}'"
    if close:
        msg += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    elif len(choices) <= 12:
        msg += "; valid: " + ", ".join(choices)
    if hint:
        msg += f" ({hint})"
    return UserError(msg)
