"""Run records: one JSON file per run, schema-versioned, written atomically, never holding a secret.

A record is a plain dict (JSON) with this shape (missing parts are null):

    schema_version, run_id, kind ("train" | "eval" | "cycle"), status, created_at, command (argv),
    provenance {git_sha, dlm_version, libraries{}, python, platform, device},
    model {name, resolved, revision, peft, base_model},
    approach ("zero-shot" | "pretrain" | "sft" | "sequential" | "multitask"), domain (of the training data),
    train {config, data{parts, rates, realised_proportions}, tokens_seen, packing_efficiency, wall_time_s,
           tokens_per_s, peak_memory_mb, trainable_params, total_params, loss_curve [[step, loss]],
           final_loss, output_dir, contamination},
    eval {config, scores [Score...], wall_time_s, raw (lm-eval's output without per-sample logs)}

lm-eval's "metric,filter" keys are parsed here, once (`scores_from_lm_eval`); everything else uses `Score`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from dlm.files import atomic_write
from dlm.secrets import scrub
from dlm.store.rescue import rescued

SCHEMA_VERSION = 1
LIBRARIES = ("torch", "transformers", "datasets", "lm_eval", "trl", "peft", "accelerate", "tokenizers")


@dataclass
class Score:
    task: str
    metric: str  # e.g. "acc", "f1_weighted", "exact_match"
    value: float
    stderr: float | None  # None when lm-eval reports "N/A" (bootstrap off)
    n: int | None  # documents scored
    num_fewshot: int | None
    filter: str = "none"  # lm-eval filter ("strict-match", "flexible-extract", ...)
    version: str | None = None  # task metadata.version
    is_group: bool = False
    higher_is_better: bool = True
    stderr_method: str | None = None  # "lm-eval" (its analytic or bootstrap stderr) | "bootstrap" (dlm's, per doc)
    protocol: dict | None = None  # how it was obtained (harness_tasks/protocol.py); None in records before it existed

    @property
    def scoring(self) -> str | None:
        """ "loglikelihood" | "generative" | "perplexity" | "mixed", or None when the record does not say."""
        return (self.protocol or {}).get("scoring")

    def to_dict(self) -> dict:
        return asdict(self)


def scores_from_lm_eval(results: dict) -> list[Score]:
    """Parse lm-eval's results dict (`results`, `groups`, `n-shot`, `n-samples`, `versions`) into Scores."""
    out: list[Score] = []
    groups = set(results.get("groups", {})) | set(results.get("group_subtasks", {}))
    higher = results.get("higher_is_better", {})
    for task, row in {**results.get("results", {}), **results.get("groups", {})}.items():
        if any(s.task == task for s in out):  # groups appear in both dicts
            continue
        n_samples = results.get("n-samples", {}).get(task, {})
        n = n_samples.get("effective") if isinstance(n_samples, dict) else None
        if n is None:
            n = row.get("sample_count") or row.get("sample_len")
            n = n.get("effective") if isinstance(n, dict) else n
        shots = results.get("n-shot", {}).get(task)
        version = results.get("versions", {}).get(task)
        for key, value in row.items():
            if "," not in key or "_stderr," in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric, filt = key.split(",", 1)
            stderr = row.get(f"{metric}_stderr,{filt}")
            stderr = float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None
            out.append(
                Score(
                    task=task,
                    metric=metric,
                    value=float(value),
                    stderr=stderr,
                    n=int(n) if isinstance(n, (int, float)) else None,
                    num_fewshot=int(shots) if isinstance(shots, (int, float)) else None,
                    filter=filt,
                    version=None if version is None else str(version),
                    is_group=task in groups,
                    higher_is_better=bool(higher.get(task, {}).get(metric, True)),
                )
            )
    return out


def timestamp() -> str:
    """`created_at`: local ISO time with microseconds, so records written within one second still sort in the
    order they were made (run ids break ties at random)."""

    return datetime.datetime.now().astimezone().isoformat(timespec="microseconds")


def new_run_id(slug: str = "run") -> str:
    """Sortable and unique even for runs started in the same second by different processes."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", slug).strip("-")[:60] or "run"
    # 32 random bits: two writers in the same second clash with odds ~n^2/2^33, never in practice
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}-{slug}"


def _json_default(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    return repr(obj)


def write_record(results_dir: str | Path, record: dict) -> Path:
    """Write `record` as `<results_dir>/<run_id>.json` atomically: temp file, fsync, rename.

    A kill at any point leaves either the previous state or the whole new file, never half a record;
    concurrent writers never clash because run ids are unique.
    """
    name, text = record_file(record)
    try:
        written = atomic_write(Path(results_dir) / name, text)
    except OSError as err:  # disk full, quota, read-only mount: the scores must not be lost with the error
        raise rescued([(name, text)], results_dir, err, f"the record {name}") from None
    remember_results_dir(results_dir)
    return written


def record_file(record: dict) -> tuple[str, str]:
    """(file name, text) of a record as `write_record` writes it: defaults filled in, secrets scrubbed."""
    record = dict(record)
    record.setdefault("schema_version", SCHEMA_VERSION)
    record.setdefault("run_id", new_run_id(record.get("kind", "run")))
    record.setdefault("created_at", timestamp())
    record.setdefault("provenance", provenance())
    text = json.dumps(scrub(json.loads(json.dumps(record, default=_json_default))), indent=2, sort_keys=False)
    return f"{record['run_id']}.json", text


def _last_results_file() -> Path:
    return Path(os.environ.get("DLM_CACHE") or Path.home() / ".cache" / "dlm") / "last-results-dir.json"


def remember_results_dir(results_dir: str | Path) -> None:
    """Where the newest record went, so that a plain `dlm report` reads what the last command wrote (the demo's
    dlm-demo as much as a run's runs). Losing this note loses nothing: --results-dir still works."""
    try:
        atomic_write(
            _last_results_file(),
            json.dumps({"results_dir": str(Path(results_dir).resolve()), "written_at": timestamp()}),
        )
    except OSError:  # a read-only home: the record itself is written, the convenience is not
        pass


def last_results_dir() -> str | None:
    """The results dir of the newest record dlm wrote on this machine (None when unknown or gone)."""
    try:
        found = json.loads(_last_results_file().read_text(encoding="utf-8")).get("results_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return found if found and Path(found).is_dir() else None


def load_records(results_dir: str | Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """All readable records, oldest first, plus (file, reason) for every file that was skipped."""
    records, skipped = [], []
    directory = Path(results_dir)
    if not directory.is_dir():
        return records, skipped
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            skipped.append((str(path), f"not valid JSON ({err.__class__.__name__})"))
            continue
        if not isinstance(record, dict) or "run_id" not in record:
            skipped.append((str(path), "not a dlm run record (no run_id)"))
            continue
        problem = malformed(record)
        if problem:
            skipped.append((str(path), problem))
            continue
        if record.get("schema_version", 0) > SCHEMA_VERSION:
            skipped.append((str(path), f"schema_version {record['schema_version']} is newer than this dlm"))
            continue
        records.append(record)
    records.sort(key=lambda r: (r.get("created_at", ""), r["run_id"]))
    return records, skipped


_NUMBER = (int, float)


def malformed(record: dict) -> str | None:
    """Why a record cannot be read (a field of the wrong type), or None. Checked once here, so a hand-edited or
    foreign file is skipped and named instead of crashing the report, a plan or zero-shot reuse."""
    checks = [
        ("run_id", str, False),
        ("created_at", str, True),
        ("status", str, True),
        ("approach", str, True),
        ("domain", str, True),
        ("kind", str, True),
        ("plan_key", str, True),
        ("eval", dict, True),
        ("train", dict, True),
        ("model", dict, True),
        ("starts_from", dict, True),
        ("zero_shot_key", dict, True),
        ("schema_version", int, True),
    ]
    for name, kind, optional in checks:
        value = record.get(name)
        if (value is None and not optional) or (value is not None and not isinstance(value, kind)):
            return f"field '{name}' is {type(value).__name__}, expected {kind.__name__}"
    evaluation = record.get("eval") or {}
    for key, kind in (("scores", list), ("config", dict), ("tasks", list), ("outcomes", str)):
        if evaluation.get(key) is not None and not isinstance(evaluation[key], kind):
            return f"field 'eval.{key}' is {type(evaluation[key]).__name__}, expected {kind.__name__}"
    for i, score in enumerate(evaluation.get("scores") or []):
        if (
            not isinstance(score, dict)
            or not isinstance(score.get("task"), str)
            or not isinstance(score.get("metric"), str)
            or not isinstance(score.get("value"), _NUMBER)
            or isinstance(score.get("value"), bool)
        ):
            return f"eval.scores[{i}] is not a score (task, metric, numeric value)"
        for key in ("stderr", "n", "num_fewshot"):
            if score.get(key) is not None and not isinstance(score[key], _NUMBER):
                return f"eval.scores[{i}].{key} is {type(score[key]).__name__}, expected a number"
    train = record.get("train") or {}
    for key, kind in (("config", dict), ("wall_time_s", _NUMBER), ("output_dir", str), ("data", dict)):
        if train.get(key) is not None and not isinstance(train[key], kind):
            return f"field 'train.{key}' has the wrong type ({type(train[key]).__name__})"
    return None


def record_scores(record: dict) -> list[Score]:
    scores = ((record.get("eval") or {}).get("scores")) or []
    fields = Score.__dataclass_fields__
    return [Score(**{k: v for k, v in s.items() if k in fields}) for s in scores]


def provenance() -> dict:
    """What produced a result: code version, library versions, interpreter, machine."""

    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            libs[name] = None
    try:
        dlm_version = metadata.version("dlm")
    except metadata.PackageNotFoundError:
        dlm_version = None
    return {
        "git_sha": _git_sha(),
        "dlm_version": dlm_version,
        "libraries": libs,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": _device(),
    }


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _device() -> str:
    if "torch" not in sys.modules:  # never import torch just to describe the machine
        return "unknown"
    import torch  # lazy: only once a run has imported it

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"


def eval_settings(record: dict) -> dict:
    """The evaluation settings of a record as one flat mapping: the protocol's fields (records since the protocol
    object) and the evaluation's own, or the flat config of older records."""
    config = (record.get("eval") or {}).get("config") or {}
    protocol = config.get("protocol") if isinstance(config.get("protocol"), dict) else {}
    return {**config, **protocol}
