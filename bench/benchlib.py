"""What every benchmark script shares: offline environment, the --tiny flag, alternated timing, child processes.

Timings on a shared machine are noisy, so every comparison runs its two sides alternately in the same run
(A, B, A, B, ...) and reports the ratio of medians; absolute times are printed for context only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def offline_env() -> None:
    """Hub calls fail at once instead of hanging (every input here is local); a private HF_HOME and the sample
    snapshots as the data dir unless set. Settings already in the environment win (tests set their own)."""
    defaults = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DLM_DATA_DIR": str(SAMPLES),
        "WANDB_MODE": "disabled",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    if "HF_HOME" not in os.environ:
        os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="dlm-bench-hf-")


offline_env()  # before any Hugging Face import in the importing script


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=doc.strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc
    )
    p.add_argument(
        "--tiny",
        "--quick",
        dest="tiny",
        action="store_true",
        help="smallest sizes, one round: checks the script runs (a few seconds), measures nothing",
    )
    p.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's, one per core); 1 keeps ratios stable while "
        "other processes load the machine (2 threads on 2 busy cores stall at every barrier)",
    )
    return p


TINY = False  # set by parse(): a --tiny run checks that the script works; its numbers mean nothing


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    global TINY
    args = p.parse_args(argv)
    TINY = bool(args.tiny)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # child processes (dlm, lm_eval) follow
    return args


def alternate(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, list]:
    """Run the sides in turn, `rounds` times (A, B, A, B, ...); each side's results in order."""
    results: dict[str, list] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            results[name].append(run())
    return results


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def spread(values) -> str:
    values = [v for v in values if v is not None]
    return f"{min(values):.3g}..{max(values):.3g}" if values else "-"


def verdict(ratio: float, target: float, lower_is_better: bool) -> str:
    if ratio != ratio:
        return "n/a"
    if TINY:
        return "(--tiny: no verdict)"
    if target != target:
        return "reported (no target)"
    ok = ratio <= target if lower_is_better else ratio >= target
    return "MEETS" if ok else "MISSES"


def result_line(name: str, ratio: float, target: float, lower_is_better: bool, what: str) -> dict:
    """Print the one line a reader looks for; return it as a dict for --json."""
    sign = "<=" if lower_is_better else ">="
    goal = f"target {sign} {target}" if target == target else "no target"
    print(f"RESULT {name}: {ratio:.3f} ({what}; {goal}) {verdict(ratio, target, lower_is_better)}", flush=True)
    return {
        "name": name,
        "ratio": ratio,
        "target": target,
        "lower_is_better": lower_is_better,
        "what": what,
        "verdict": verdict(ratio, target, lower_is_better),
    }


def write_json(path: str | None, payload: dict) -> None:
    if path:
        payload = {**payload, "machine": machine()}
        Path(path).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def machine() -> dict:
    """The CPU model (lscpu's model name), core count, and library versions."""
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), None
        )
    except (OSError, subprocess.SubprocessError):
        pass
    info = {"cpu": model, "cores": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class ProcessResult:
    def __init__(self, wall_s, rc, peak_rss_mb, output, marks):
        self.wall_s, self.rc, self.peak_rss_mb, self.output, self.marks = wall_s, rc, peak_rss_mb, output, marks

    def check(self, what: str) -> ProcessResult:
        if self.rc != 0:
            raise SystemExit(f"{what} failed (exit {self.rc}):\n{self.output[-3000:]}")
        return self


def run_process(
    cmd: list[str], env: dict | None = None, marks: dict[str, str] | None = None, cwd: str | Path | None = None
) -> ProcessResult:
    """Run `cmd` as a whole process: wall time, exit code, its own peak RSS (wait4), combined output, and the
    seconds from start until the first output line containing each of `marks` (name -> substring)."""
    marks = marks or {}
    seen: dict[str, float] = {}
    lines: list[str] = []
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or ROOT),
    )

    def read():
        for line in proc.stdout:
            now = time.perf_counter() - start
            lines.append(line)
            for name, text in marks.items():
                if name not in seen and text in line:
                    seen[name] = now

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    reader.join(timeout=10)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessResult(wall, proc.returncode, usage.ru_maxrss / 1024, "".join(lines), seen)


def python() -> str:
    return sys.executable


def dlm_command() -> list[str]:
    """`dlm` as installed next to this interpreter (the console script), else `python -m` on cli.py."""
    script = Path(sys.executable).parent / "dlm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dlm"]


def gpt2_tokenizer():
    """GPT-2's real 50,257-token tokenizer (the vendored files of trainers/families.py), pad = eos as dlm's
    load_model sets it: what a "GPT-2-124M shape" run tokenises with."""
    from dlm.trainers.families import gpt2_tokenizer as vendored

    tokenizer = vendored()
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def qwen2_tokenizer():
    """shrunk-qwen2's tokenizer: Qwen2's pre-tokenizer, special tokens and chat template over a small BPE (the
    real 151k vocabulary is not vendored)."""
    from dlm.trainers.models import load_model

    return load_model("shrunk-qwen2")[1]


def gpt2_124m(tokenizer=None, seed: int = 0):
    """A random-init GPT-2-124M: openai-community/gpt2's config (vendored; nothing is downloaded). `tokenizer` is
    accepted for symmetry with qwen2_05b; GPT-2's own special-token ids are the config's."""
    import torch
    from transformers import GPT2LMHeadModel

    from dlm.trainers.families import gpt2_config

    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config())


def save_gpt2_124m(directory: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """A random-init GPT-2-124M checkpoint (tied embeddings) with GPT-2's real tokenizer, for `--model DIR`."""
    model = gpt2_124m(seed=seed)
    directory = Path(directory)
    model.save_pretrained(directory)
    (tokenizer or gpt2_tokenizer()).save_pretrained(directory)
    return directory


# Qwen/Qwen2-0.5B's shapes (config.json of the hub repo): 494M parameters with the tied embedding counted once
def qwen2_05b(tokenizer, seed: int = 0):
    """A random-init Qwen2ForCausalLM with Qwen/Qwen2-0.5B's config (trainers/families.py; nothing is downloaded),
    its special-token ids those of `tokenizer` (shrunk-qwen2's: Qwen2's specials over a small vocabulary)."""
    import torch
    from transformers import Qwen2ForCausalLM

    from dlm.trainers.families import qwen2_config

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    return Qwen2ForCausalLM(qwen2_config(bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id))


def matmul_peak(dtype, n: int, device=None, repeats: int = 3) -> float:
    """Best FLOP/s of `repeats` n x n x n torch.mm in `dtype` on `device` (CPU by default), synchronised on CUDA."""
    import torch

    device = torch.device(device or "cpu")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)  # warm-up: kernel selection, page faults
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class StepTimes:
    """A TrainerCallback factory: seconds between consecutive step ends (batch fetch + forward + backward +
    clip + optimizer + callbacks), the first measured from on_train_begin. `sync` (e.g. torch.cuda.synchronize)
    runs before each clock reading, so asynchronous GPU work is charged to the step that queued it."""

    @staticmethod
    def make(sync=None):
        from transformers import TrainerCallback

        def clock() -> float:
            if sync is not None:
                sync()
            return time.perf_counter()

        class _StepTimes(TrainerCallback):
            def __init__(self):
                self.times: list[float] = []
                self.last = None

            def on_train_begin(self, args, state, control, **kwargs):
                self.last = clock()

            def on_step_end(self, args, state, control, **kwargs):
                now = clock()
                self.times.append(now - self.last)
                self.last = now

        return _StepTimes()
