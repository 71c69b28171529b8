"""BigCodeBench scoring: run prompt + completion against the task's unittests in a child Python process.

This is not a sandbox: the child runs with the user's permissions, in a fresh temporary directory, with a time
limit (DLM_CODE_TIMEOUT seconds, default 30). What dlm does keep from it, on every path (a local model, an API
model, lm-eval run directly on these task files): its environment is a short allowlist with HOME in its scratch
folder (no secret, no token file location, no URL with a password: dlm/secrets.py child_environment), and the
process that scores it is made non-dumpable first, so the child cannot read that process's /proc/<pid>/environ or
memory (the API key an API run still needs is in there). That is why the task is marked `unsafe_code` and only
runs after an explicit opt-in.
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from dlm.secrets import child_environment, protect_process


def program_text(doc, completion: str) -> str:
    return (
        f"{doc['complete_prompt']}{completion}\n\n"
        f"import unittest\n{doc['test']}\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    )


def passes_tests(program: str, timeout: float) -> bool:
    protect_process()  # before the first program runs: idempotent, cheap
    with tempfile.TemporaryDirectory(prefix="dlm-bcb-") as workdir:
        env = child_environment(workdir)  # MPLBACKEND=Agg included: many tasks plot; never open a window
        script = Path(workdir) / "solution_test.py"
        script.write_text(program, encoding="utf-8")
        # a session of its own: at the time limit the program and anything it started are killed together
        with subprocess.Popen(
            [sys.executable, str(script)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ) as child:
            try:
                return child.wait(timeout=timeout) == 0
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                return False


def bigcodebench_results(doc, results):
    timeout = float(os.environ.get("DLM_CODE_TIMEOUT", "30"))
    return {"pass@1": float(passes_tests(program_text(doc, results[0]), timeout))}
