"""The log of one plan run (`<results_dir>/logs/<run>.log`): the child's stdout and stderr reach it through a pipe,
scrubbed of secrets line by line on the way, so that whatever a child prints - a library's log line under
--verbose, a plan value shaped like a key, an error quoting a server's answer - the file never holds a secret.

The child writes into the pipe (its fds 1 and 2, C libraries included); `pump` reads it in the parent, cuts after
each newline or carriage return (no secret holds one) and appends the scrubbed text to the log.
"""

from __future__ import annotations

import threading

from dlm.secrets import scrub, secret_values

LONGEST_LINE = 1 << 20  # a "line" without any newline is written out (scrubbed) at this size


def pump(source, log: str, known: set[str] | None = None) -> None:
    """Copy the binary stream `source` (a pipe's read end) into the file `log`, scrubbed, until end of file."""
    known = secret_values() if known is None else known
    with source, open(log, "ab") as out:
        pending = b""
        while True:
            chunk = source.read1(65536)
            if not chunk:
                break
            pending += chunk
            cut = max(pending.rfind(b"\n"), pending.rfind(b"\r"))
            if cut < 0 and len(pending) < LONGEST_LINE:
                continue
            cut = cut if cut >= 0 else len(pending) - 1
            out.write(scrub(pending[: cut + 1].decode("utf-8", "replace"), known).encode("utf-8"))
            out.flush()
            pending = pending[cut + 1 :]
        if pending:
            out.write(scrub(pending.decode("utf-8", "replace"), known).encode("utf-8"))


def start_pump(source, log: str) -> threading.Thread:
    """`pump` in a daemon thread (the parent keeps dispatching runs meanwhile)."""
    thread = threading.Thread(target=pump, args=(source, log, secret_values()), name=f"log {log}", daemon=True)
    thread.start()
    return thread
