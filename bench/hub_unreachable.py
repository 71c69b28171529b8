"""Time from a command's start to its one error line when the Hugging Face Hub cannot be reached: a local endpoint
(HF_ENDPOINT) that refuses connections, and one that accepts them and never answers (a hung proxy, a firewall
that drops packets). Nothing is cached, HF_HUB_OFFLINE is unset: what a new user on a cut-off machine sees.

    python bench/hub_unreachable.py                          # dlm data show and dlm eval, both endpoints
    python bench/hub_unreachable.py --baseline ../main-before     # the same commands run by another checkout, alternated
    python bench/hub_unreachable.py --tiny                    # data show against the refusing endpoint only

Reported per command: seconds until the process ended, its exit code, the number of stderr lines (1 = one error
line) and how many connections the silent endpoint saw. Most of a command's time before the check is importing
torch, transformers and lm-eval (several seconds on this machine, more under load).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib as common

COMMANDS = {
    "data show": ["data", "show", "stanfordnlp/imdb", "-n", "1"],
    "eval qwen2-0.5b": ["eval", "--model", "qwen2-0.5b", "--tasks", "dlm_fpb", "--data-dir", str(common.SAMPLES)],
}
TIMEOUT_S = 600


class SilentEndpoint:
    """Accepts connections and never answers; counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port, self.held = self.sock.getsockname()[1], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(root: Path, argv: list[str], endpoint: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "DLM_DATA_DIR")
    }
    home = tempfile.mkdtemp(prefix="dlm-bench-hub-")
    env.update(HF_ENDPOINT=endpoint, HF_HOME=home, DLM_CACHE=home, PYTHONPATH=str(root))
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dlm", *argv], env=env, cwd=home, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        code, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired as timed_out:
        code, err = "timeout", (timed_out.stderr or b"").decode(errors="replace")
    lines = [line for line in err.splitlines() if line.strip()]
    return {"seconds": time.perf_counter() - started, "code": code, "stderr_lines": len(lines), "last": lines[-1:]}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--baseline", default=None, help="another checkout whose dlm runs the same commands")
    args = common.parse(p, argv)
    roots = {"this tree": common.ROOT, **({"baseline": Path(args.baseline)} if args.baseline else {})}
    silent = SilentEndpoint()
    endpoints = {"refusing": f"http://127.0.0.1:{refusing_port()}", "silent": f"http://127.0.0.1:{silent.port}"}
    if args.tiny:
        commands, endpoints = {"data show": COMMANDS["data show"]}, {"refusing": endpoints["refusing"]}
    else:
        commands = COMMANDS
    rows, results = [], []
    for command, command_argv in commands.items():
        for endpoint, url in endpoints.items():
            for name, root in roots.items():
                before = len(silent.held)
                got = run(root, command_argv, url)
                got.update(command=command, endpoint=endpoint, code_of=name, connections=len(silent.held) - before)
                rows.append(got)
                print(
                    f"{command:<16} {endpoint:<9} {name:<9} {got['seconds']:6.1f} s  exit {got['code']}  "
                    f"{got['stderr_lines']} stderr line(s), {got['connections']} connection(s) to the silent endpoint"
                    f"  {got['last'][0][:150] if got['last'] else ''}",
                    flush=True,
                )
    mine = [r["seconds"] for r in rows if r["code_of"] == "this tree"]
    results.append(common.result_line("hub_unreachable_s", max(mine), float("nan"), True, "slowest error, seconds"))
    payload = {"bench": "hub_unreachable", "runs": rows, "results": results}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
