"""One run key runs once: a lease per run key, shared by every process that uses the same results dir.

A lease is an exclusive `flock` on `<results_dir>/.leases/<run key>.lock`, held for as long as the run lasts.
The kernel drops it when its holder exits or dies (kill -9 included), so a dead holder's lease is taken over by
the next process that asks; nothing has to be cleaned up. The file names the holder (pid, host) for messages.

One writer per output dir: `try_dir_lease` takes the same kind of lock on a training run's output dir itself, so
two runs with different run keys (two `dlm train`, two plans) can never write one dir at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LEASE_DIR = ".leases"
BUSY_TRIES, BUSY_WAIT_S = 3, 0.05


class Lease:
    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def try_lease(results_dir: str | Path, key: str) -> Lease | str:
    """The lease of `key`, or a description of the live process that holds it."""
    import fcntl

    path = Path(results_dir) / LEASE_DIR / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(BUSY_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt + 1 == BUSY_TRIES:
                holder = _holder(fd)
                os.close(fd)
                return holder
            time.sleep(BUSY_WAIT_S)  # a `dlm report` checking the lease holds it for microseconds only
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
    return Lease(fd, path)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    return f"process {info.get('pid', '?')} on {info.get('host', '?')}"


def try_dir_lease(directory: str | Path) -> Lease | str:
    """An exclusive `flock` on the directory itself (one writer per output dir, whatever its run key), or a
    description of the live process that holds it. The directory must exist. Nothing is written into it: the lock
    is on the directory's own descriptor, and the kernel drops it when its holder exits or dies."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(os.fstat(fd).st_ino)
        os.close(fd)
        return holder
    return Lease(fd, Path(directory))


def _lock_holder(inode: int) -> str:
    """'process PID' from /proc/locks (Linux) for the flock on `inode`, else 'another process'."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if "FLOCK" in fields and len(fields) >= 6 and fields[5].rsplit(":", 1)[-1] == str(inode):
                    return f"process {fields[4]}"
    except OSError:
        pass
    return "another process"


def is_held(results_dir: str | Path, key: str) -> bool:
    """Whether a live process holds the lease of `key` now (`dlm report`: a run still being written is "running",
    not "interrupted"). Reads only: nothing is created, and a link in place of the lock file is not followed."""
    import fcntl

    try:
        fd = os.open(Path(results_dir) / LEASE_DIR / f"{key}.lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # no lease file: nobody ever ran it under a lease here
        return False
    try:
        # a shared lock is refused while the holder's exclusive one stands; when granted it is dropped at once
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
