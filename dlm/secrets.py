"""Secrets: what counts as one, scrubbing them out of everything dlm writes or prints, and keeping them out of reach
of model-generated code.

- `scrub(value)`: every secret dlm knows by value (environment variables named like TOKEN, KEY, SECRET, PASS,
  CREDENTIAL; the variable --api-key-env names; the Hugging Face token file; secrets forgotten earlier) and every
  string shaped like one (Hugging Face, OpenAI, Anthropic, GitHub, AWS, Slack, Google keys, `Bearer ...`, the
  password of a URL such as http://user:PASS@host) replaced by ***, wherever it appears in a JSON-able value
  (records, model cards, logs, error lines, exports).
- `forget_secrets()`: before `--allow-code-execution` runs a program the model wrote, dlm forgets its secrets -
  from os.environ and from the process's initial environment block, which any process of the same user can read
  as /proc/<pid>/environ whatever os.environ says later. They stay known to `scrub`.
- `protect_process()`: makes this process non-dumpable, so that processes of the same (non-root) user, model-
  generated code included, can read neither its /proc/<pid>/environ nor its memory. The API path needs its key
  until the last request, so there the key stays in memory but out of the children's reach.
- `child_environment(workdir)`: the whole environment a program the model wrote gets: a short allowlist (PATH,
  locale), HOME and TMPDIR in its own scratch folder; no secret, no token file, no URL with credentials.
"""

from __future__ import annotations

import base64
import ctypes
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

SECRET_ENV_HINTS = ("TOKEN", "KEY", "SECRET", "PASS", "CREDENTIAL")
MIN_SECRET_LEN = 8  # shorter values ("1", "true") would scrub ordinary text
# tokens recognised by their shape even when they are not in this process's environment
SECRET_SHAPES = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|sk-ant-[A-Za-z0-9_-]{20,}"  # Anthropic
    r"|sk-(?:proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35})"  # Google
)
BEARER = re.compile(r"(?i)\b(bearer|authorization:\s*basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# scheme://user:password@host -> the password goes, the user and host stay (a record says which server it was)
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):([^\s/@]+)@")
# what a program the model wrote keeps of dlm's environment (everything else, secrets included, is left out)
CHILD_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "SYSTEMROOT", "TERM")
PR_SET_DUMPABLE = 4

_remembered: set[str] = set()  # values of secrets this process forgot (forget_secrets): still scrubbed
_named: set[str] = set()  # variables named as secrets whatever their names (--api-key-env)
_learned = [0]  # how many times the two sets above grew (ScrubbedStream looks the secrets up again)


def treat_as_secret(variable: str | None) -> None:
    """The value of `variable` is a secret from now on in this process (e.g. the one --api-key-env names)."""
    if variable:
        _named.add(variable)
        _learned[0] += 1


def url_secrets(url: str) -> None:
    """The password of a URL the user typed (--base-url http://user:PASSWORD@host) is a secret from now on, and so
    is the HTTP Basic credential made of it (a gateway that echoes the Authorization header it got quotes that)."""
    parts = urlsplit(url)
    if parts.password:
        credential = f"{unquote(parts.username or '')}:{unquote(parts.password)}".encode()
        _remembered.update({unquote(parts.password), parts.password, base64.b64encode(credential).decode()})
        _learned[0] += 1


def secret_names() -> list[str]:
    return [k for k, v in os.environ.items() if v and (k in _named or any(h in k.upper() for h in SECRET_ENV_HINTS))]


def secret_values() -> set[str]:
    """Every secret this process knows by value (see the module docstring)."""
    values = {os.environ[k] for k in secret_names()} | _remembered
    for value in os.environ.values():  # DATABASE_URL=postgres://user:PASSWORD@host: the password is a secret
        values.update(match.group(2) for match in URL_PASSWORD.finditer(value))
    token = _hub_token()
    if token:
        values.add(token)
    return {v for v in values if len(v) >= MIN_SECRET_LEN}


def _hub_token() -> str | None:
    """The token `huggingface-cli login` stored ($HF_TOKEN_PATH, else $HF_HOME/token, else
    ~/.cache/huggingface/token)."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    path = Path(os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token"))
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            return f.read(4096).decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def scrub(value, known: set[str] | None = None):
    """Replace every secret (by value and by shape) wherever it appears in a JSON-able value; `known`: the values
    to look for (default: secret_values(), computed once per call)."""
    known = secret_values() if known is None else known
    if isinstance(value, str):
        for s in sorted(known, key=len, reverse=True):  # longest first: a secret that contains another
            if s in value:
                value = value.replace(s, "***")
        value = URL_PASSWORD.sub(r"\1:***@", value)
        value = BEARER.sub(lambda m: f"{m.group(1)} ***", value)
        return SECRET_SHAPES.sub("***", value)
    if isinstance(value, dict):
        return {scrub(k, known): scrub(v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, known) for v in value]
    return value


def forget_secrets() -> list[str]:
    """Remove every secret variable from this process's environment, the /proc view included; returns the names."""
    names = secret_names()
    values = [os.environ[n] for n in names]
    _remembered.update(v for v in values if len(v) >= MIN_SECRET_LEN)
    _learned[0] += 1
    for name in names:
        os.environ.pop(name, None)  # also unsetenv(): children started from now on never get them
    _blank_initial_environment(values)
    return names


def protect_process() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): /proc/<pid>/environ, /proc/<pid>/mem and ptrace of this process are closed to
    other processes of the same user (root keeps access: run generated code as a normal user). Linux only;
    returns whether it took effect. Kept across fork; a child that execs a program is its own again."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def child_environment(workdir: str | Path) -> dict[str, str]:
    """The environment of a program the model wrote (see the module docstring)."""
    known = secret_values()
    env = {k: os.environ[k] for k in CHILD_ENV_KEEP if k in os.environ}
    env = {k: v for k, v in env.items() if scrub(v, known) == v}  # a value holding a secret is dropped
    env.update(HOME=str(workdir), TMPDIR=str(workdir), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    return env


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


class ScrubbedStream:
    """A text stream (sys.stdout) whose every write is scrubbed first; everything else (isatty, encoding, fileno)
    is the wrapped stream's, so Rich still sees a terminal. The secrets are looked up again only when this process
    learns a new one (--api-key-env, a --base-url password, forget_secrets)."""

    def __init__(self, stream):
        self._stream, self._known, self._seen = stream, secret_values(), _learned[0]

    def write(self, text: str) -> int:
        if self._seen != _learned[0]:
            self._known, self._seen = secret_values(), _learned[0]
        self._stream.write(scrub(text, self._known))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)
