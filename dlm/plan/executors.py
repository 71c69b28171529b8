"""Where `dlm plan --jobs N` runs its children (study/plan_jobs.py): each executor starts a command with an
environment and a log file, and says when it has finished and with what exit code.

- local: a subprocess per run on this machine.
- ray: a Ray task per run (`num_gpus` reserved for it), on a running cluster (`--address`) or a local instance.
- slurm: a Slurm job per run through submitit (partition, time, GPUs, account from the plan's `slurm:` section or
  the flags), `afterok` on the parent's job, requeued on preemption (the child resumes from its checkpoint). On a
  machine without Slurm, submitit's local executor runs the same jobs (the tests use it).
Ray and submitit are optional extras; asking for a missing one is one line naming the install.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from dlm.errors import UserError
from dlm.plan.child import main
from dlm.plan.logs import pump, start_pump


def run_command(command: list[str], env: dict, log: str) -> int:
    """Run `command` with `env`, stdout and stderr into `log` (scrubbed of secrets: plan/logs.py); its exit code."""
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        pump(process.stdout, log)
        return process.wait()


class LocalExecutor:
    """Processes on this machine. On Linux without GPUs each run is a fork of this process after the heavy
    libraries are imported once (torch, transformers, TRL, lm-eval: ~5 s of start-up a fresh interpreter would pay
    per run); with GPUs, a fresh interpreter per run (CUDA must not be initialised before a fork)."""

    submits_with_dependencies = False

    def __init__(self, fork: bool | None = None):

        if fork is None:
            fork = sys.platform.startswith("linux") and not _has_gpus()
        self.fork = fork
        if fork:
            _warm_imports()
            self.context = multiprocessing.get_context("fork")

    def start(self, name, command, env, log: Path, gpus: int = 0, after=None):
        # the child writes into a pipe; a thread here appends what it says to its log, scrubbed (plan/logs.py)
        if self.fork:
            read_end, write_end = os.pipe()
            process = self.context.Process(
                target=_forked_child, args=(command[3:], env, write_end, read_end), name=name
            )
            process.start()
            os.close(write_end)
            return process, start_pump(open(read_end, "rb"), str(log))
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return process, start_pump(process.stdout, str(log))

    def poll(self, handle):
        process, logger = handle
        code = (None if process.is_alive() else process.exitcode) if self.fork else process.poll()
        if code is not None:
            logger.join(timeout=5)  # its last lines reach the log before the run is reported done
        return code

    def stop(self, handle) -> None:
        """SIGTERM: the child stops as on Ctrl-C (dlm/signals.py), keeping its complete checkpoints."""
        process, _ = handle
        process.terminate()

    def wait(self, handle, timeout: float) -> bool:
        """True once the child has exited (its last lines in its log), False if it still runs after `timeout` s."""
        process, logger = handle
        if self.fork:
            process.join(timeout)
            done = not process.is_alive()
        else:
            try:
                process.wait(timeout)
                done = True
            except subprocess.TimeoutExpired:
                done = False
        if done:
            logger.join(timeout=5)
        return done

    def kill(self, handle) -> None:
        process, _ = handle
        process.kill()
        self.wait(handle, 5.0)

    def close(self) -> None:
        pass


def _has_gpus() -> bool:

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _warm_imports() -> None:
    import datasets  # noqa: F401
    import lm_eval.evaluator  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    import dlm.harness_tasks.evaluate  # noqa: F401
    import dlm.study.cycle  # noqa: F401
    import dlm.trainers.train  # noqa: F401


def _forked_child(argv: list[str], env: dict, write_end: int, read_end: int) -> None:
    """A run in a forked process: its environment, the log pipe as stdout and stderr, plan_child's exit code."""

    os.environ.clear()
    os.environ.update(env)
    os.close(read_end)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    # the parent's sys.stdout may be a wrapper that is not fd 1 (pytest's capture, a notebook's stream)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)

    torch.set_num_threads(int(env.get("OMP_NUM_THREADS") or 1))

    try:
        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class RayExecutor:
    submits_with_dependencies = False

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise UserError('--executor ray needs Ray: pip install -e ".[ray]"') from None
        self.ray = ray
        if not ray.is_initialized():  # no address: a local Ray instance for the length of the plan
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.remote = ray.remote(run_command)

    def start(self, name, command, env, log: Path, gpus: int = 0, after=None):
        return self.remote.options(num_gpus=gpus, num_cpus=1, name=name).remote(command, env, str(log))

    def poll(self, handle):
        ready, _ = self.ray.wait([handle], timeout=0)
        return self.ray.get(handle) if ready else None

    def stop(self, handle) -> None:
        self.ray.cancel(handle, force=False)  # KeyboardInterrupt in the task: run_command stops its child

    def wait(self, handle, timeout: float) -> bool:
        ready, _ = self.ray.wait([handle], timeout=timeout)
        return bool(ready)

    def kill(self, handle) -> None:
        self.ray.cancel(handle, force=True)

    def close(self) -> None:
        pass


def slurm_parameters(slurm: dict, gpus: int, name: str) -> dict:
    """submitit parameters of one run: the plan's `slurm:` section (partition, time_min, account, cpus_per_task,
    mem_gb, ...) with this run's name and GPUs."""
    params = {
        "name": f"dlm-{name}",
        "timeout_min": int(slurm.get("time_min", 120)),
        "cpus_per_task": int(slurm.get("cpus_per_task", 4)),
        "gpus_per_node": gpus,
        "slurm_partition": slurm.get("partition"),
        "slurm_account": slurm.get("account"),
        "mem_gb": slurm.get("mem_gb"),
    }
    return {k: v for k, v in params.items() if v is not None}


def sbatch_preview(slurm: dict, gpus: int, name: str, after_job: str | None = None, folder: str = "slurm") -> str:
    """The #SBATCH header submitit writes for one run (the same parameters SlurmExecutor submits)."""
    from submitit.slurm.slurm import _make_sbatch_string

    params = slurm_parameters(slurm, gpus, name)
    return _make_sbatch_string(
        command="python -m dlm.plan.child ...",
        folder=folder,
        job_name=params["name"],
        partition=params.get("slurm_partition"),
        time=params["timeout_min"],
        gpus_per_node=params["gpus_per_node"] or None,
        cpus_per_task=params["cpus_per_task"],
        account=params.get("slurm_account"),
        dependency=f"afterok:{after_job}" if after_job else None,
        use_srun=False,
    )


class SlurmExecutor:
    def __init__(self, folder: Path, slurm: dict | None = None, cluster: str | None = None):
        try:
            import submitit
        except ImportError:
            raise UserError('--executor slurm needs submitit: pip install -e ".[slurm]"') from None
        self.submitit = submitit
        self.slurm = dict(slurm or {})
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.submits_with_dependencies = self.executor.cluster == "slurm"  # afterok; locally, wait for the parent

    def start(self, name, command, env, log: Path, gpus: int = 0, after=None):
        params = slurm_parameters(self.slurm, gpus, name)
        if after is not None and self.submits_with_dependencies:
            params["slurm_additional_parameters"] = {"dependency": f"afterok:{after.job_id}"}
        self.executor.update_parameters(**params)
        return self.executor.submit(RequeuedCommand(command, env, str(log)))

    def poll(self, handle):
        if not handle.done():
            return None
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return int(handle.result())
        except (FailedJobError, UncompletedJobError):  # the job died (node failure, time limit): its log says why
            return 1

    def stop(self, handle) -> None:
        handle.cancel(check=False)  # scancel: Slurm sends SIGTERM, then SIGKILL after its KillWait

    def wait(self, handle, timeout: float) -> bool:
        deadline = time.time() + timeout
        while not handle.done() and time.time() < deadline:
            time.sleep(0.5)
        return handle.done()

    def kill(self, handle) -> None:
        handle.cancel(check=False)

    def close(self) -> None:
        pass


class RequeuedCommand:
    """The child command as a submitit job; on preemption or timeout submitit requeues it (Checkpointable) and the
    child resumes from its newest checkpoint, as a re-run plan does."""

    def __init__(self, command: list[str], env: dict, log: str):
        self.command, self.env, self.log = command, env, log

    def __call__(self) -> int:
        return run_command(self.command, self.env, self.log)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(RequeuedCommand(self.command, self.env, self.log))


def make_executor(kind: str, results_dir: str, address: str | None = None, slurm: dict | None = None):
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address)
    if kind == "slurm":
        return SlurmExecutor(Path(results_dir) / "slurm", slurm, cluster=(slurm or {}).get("cluster"))
    raise UserError(f"unknown --executor '{kind}'; use local, ray or slurm")
