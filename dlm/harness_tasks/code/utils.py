"""BigCodeBench scoring: run prompt + completion against the task's unittests in a child Python process.

This is not a sandbox: the child runs with the user's permissions, in a fresh temporary directory, with a time
limit (DLM_CODE_TIMEOUT seconds, default 30) and without the parent's secrets in its environment. That is why the
task is marked `unsafe_code` and only runs after an explicit opt-in.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

SECRET_HINTS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL")


def program_text(doc, completion: str) -> str:
    return (
        f"{doc['complete_prompt']}{completion}\n\n"
        f"import unittest\n{doc['test']}\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    )


def passes_tests(program: str, timeout: float) -> bool:
    env = {k: v for k, v in os.environ.items() if not any(h in k.upper() for h in SECRET_HINTS)}
    env["MPLBACKEND"] = "Agg"  # many tasks plot; never open a window
    with tempfile.TemporaryDirectory(prefix="dlm-bcb-") as workdir:
        script = Path(workdir) / "solution_test.py"
        script.write_text(program, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, str(script)],
                cwd=workdir,
                env=env,
                capture_output=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def bigcodebench_results(doc, results):
    timeout = float(os.environ.get("DLM_CODE_TIMEOUT", "30"))
    return {"pass@1": float(passes_tests(program_text(doc, results[0]), timeout))}
