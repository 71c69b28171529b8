"""Run records: one JSON file per run, typed, versioned, checked on write and on read, written atomically, never
holding a secret.

A record is a `RunRecord`; its fields below are the whole schema (kind "train" | "eval" | "cycle"). The training
part holds the `TrainConfig` that ran and the evaluation part the `EvalConfig` (with its protocol), the same
dataclasses that generated the command line (dlm/config.py), so a record reads back as the config that produced
it. `load_record` is the one strict loader (dlm/store/schema.py): wrong types, non-finite numbers, negative counts,
unknown kinds, statuses or approaches and unknown schema versions are refused, naming the file and the field.
Records of schema 1 (flat config dicts, written before the config dataclasses) are migrated when read.
Nothing in a record names code: no aggregation or class is ever imported from a string found in a file.

lm-eval's "metric,filter" keys are parsed here, once (`scores_from_lm_eval`); everything else uses `Score`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dlm.config import EvalConfig, TrainConfig
from dlm.files import atomic_write
from dlm.secrets import scrub
from dlm.store.lineage import Evaluated, Lineage, Stage  # noqa: F401 (part of the record schema)
from dlm.store.pointer import remember_results_dir
from dlm.store.provenance import new_run_id, provenance, timestamp
from dlm.store.rescue import rescued
from dlm.store.schema import Json, SchemaError, check, load

SCHEMA_VERSION = 2  # 2: configs as dlm/config.py's dataclasses; 1: flat config dicts (migrated when read)
KINDS = ("train", "eval", "cycle")
STATUSES = ("ok", "incomplete", "failed")
APPROACHES = ("zero-shot", "pretrain", "sft", "sequential", "multitask", "api", "unknown")
SCORINGS = ("loglikelihood", "generative", "perplexity", "mixed")
COUNT = check(minimum=0)


# --- scores ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateId:
    name: str | None = None
    sha256: str | None = None


@dataclass
class ScoreProtocol:
    """How a score was obtained (harness_tasks/protocol.py): what two scores must share to be compared."""

    scoring: str | None = field(default=None, metadata=check(choices=SCORINGS))
    shots: int | None = field(default=None, metadata=COUNT)
    chat_template: TemplateId | None = None
    system_instruction: str | None = None  # its sha256
    fewshot_as_multiturn: bool = False
    generation: Json = None  # the decoding settings of generative tasks
    extraction: str | None = None  # "dlm-labels-v<N>", lm-eval filter names, or None
    data_source: str | None = None  # "hub" | "local:<snapshot fingerprint>" (None: not recorded, older records)
    documents: str | None = None  # sha256 over the scored documents' hashes (None: not recorded)


@dataclass
class Score:
    task: str
    metric: str  # e.g. "acc", "f1_weighted", "exact_match"
    value: float | None  # None: undefined (lm-eval reported NaN, e.g. a metric of no positive example)
    stderr: float | None = field(default=None, metadata=COUNT)  # None: none available (bootstrap off)
    n: int | None = field(default=None, metadata=COUNT)  # documents scored
    num_fewshot: int | None = field(default=None, metadata=COUNT)
    filter: str = "none"  # lm-eval filter ("strict-match", "flexible-extract", ...)
    version: str | None = None  # task metadata.version
    is_group: bool = False
    higher_is_better: bool = True
    stderr_method: str | None = field(default=None, metadata=check(choices=("lm-eval", "bootstrap")))
    protocol: ScoreProtocol | None = None  # None in records before protocols existed

    @property
    def scoring(self) -> str | None:
        """ "loglikelihood" | "generative" | "perplexity" | "mixed", or None when the record does not say."""
        return self.protocol.scoring if self.protocol else None

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
                    value=float(value) if math.isfinite(value) else None,
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


# --- the parts of a record --------------------------------------------------------------------------------------
@dataclass
class Provenance:
    git_sha: str | None = None
    dlm_version: str | None = None
    libraries: dict[str, str | None] = field(default_factory=dict)
    python: str | None = None
    platform: str | None = None
    device: str | None = None


@dataclass
class PreviousRun:
    run_id: str | None = None
    mode: str | None = None
    data: list[str] | None = None


@dataclass
class ModelInfo:
    name: str | None = None  # as the user gave it
    resolved: str | None = None  # the local dir or hub id it resolved to
    revision: str | None = None
    peft: str | None = None  # the adapter dir
    base_model: str | None = None
    previous_run: PreviousRun | None = None  # training: the run whose checkpoint this one started from
    checkpoint: str | None = None  # cycles: the output dir evaluated
    from_adapter: bool | None = None
    api: Json = None  # API models: provider, model, url, key variable name (never its value)


@dataclass
class StartsFrom:
    run_id: str | None = None
    approach: str | None = None
    domain: str | None = None
    mode: str | None = None


@dataclass
class CurvePoint:
    step: int = field(metadata=COUNT)
    tokens: int = field(metadata=COUNT)
    task: str
    metric: str
    value: float
    filter: str | None = None
    stderr: float | None = field(default=None, metadata=COUNT)
    n: int | None = field(default=None, metadata=COUNT)
    is_group: bool = False


@dataclass
class PlanTag:
    name: str | None = None
    file: str | None = None
    run: str | None = None


@dataclass
class TrainPart:
    """What training did: its config, its data as drawn, and what it cost."""

    mode: str | None = field(default=None, metadata=check(choices=("pretrain", "sft")))
    lora: bool | None = None
    config: TrainConfig | None = None  # the learning rate is the one used (mode/LoRA default filled in)
    data: Json = None  # parts, rates asked, realised proportions, streamed, ...
    tokens_seen: int | None = field(default=None, metadata=COUNT)
    packing_efficiency: float | None = field(default=None, metadata=COUNT)
    padded_efficiency: float | None = field(default=None, metadata=COUNT)
    documents: int | None = field(default=None, metadata=COUNT)  # pretraining: documents packed
    blocks: int | None = field(default=None, metadata=COUNT)  # pretraining: blocks of max_length
    bin_fill: float | None = field(default=None, metadata=COUNT)  # SFT: how full the packed rows are
    packed_rows: int | None = field(default=None, metadata=COUNT)
    examples: int | None = field(default=None, metadata=COUNT)
    examples_at_max_length: int | None = field(default=None, metadata=COUNT)
    fit_to_max_length: Json = None
    global_step: int | None = field(default=None, metadata=COUNT)
    wall_time_s: float | None = field(default=None, metadata=COUNT)
    train_time_s: float | None = field(default=None, metadata=COUNT)
    this_process_wall_time_s: float | None = field(default=None, metadata=COUNT)
    processes: int | None = field(default=None, metadata=COUNT)
    tokens_per_s: float | None = field(default=None, metadata=COUNT)
    peak_memory_mb: float | None = field(default=None, metadata=COUNT)
    trainable_params: int | None = field(default=None, metadata=COUNT)
    total_params: int | None = field(default=None, metadata=COUNT)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    final_loss: float | None = None
    mean_loss: float | None = None
    output_dir: str | None = None
    merged_dir: str | None = None
    world_size: int | None = field(default=None, metadata=COUNT)
    device: str | None = None
    time_estimate: Json = None  # predicted and calibrated seconds beside the actual training time
    curve: list[CurvePoint] = field(default_factory=list)  # --eval_steps points
    curve_eval_s: float | None = field(default=None, metadata=COUNT)
    curve_documents: Json = None  # {task: sha256 of the document hashes of the fixed subset every point scores}
    contamination: Json = None  # overlap of the training data with each scored task (a list of reports)


@dataclass
class EvalPart:
    """What evaluation did: its config (with the protocol), its scores, and where its per-document outcomes are."""

    config: EvalConfig | None = None
    tasks: list[str] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    wall_time_s: float | None = field(default=None, metadata=COUNT)
    dtype: str | None = None
    raw: Json = None  # lm-eval's results without per-sample logs
    outcomes: str | None = None  # the outcomes file's name, in the record's own folder
    curve: list[CurvePoint] = field(default_factory=list)  # --checkpoints
    curve_of: Json = None


@dataclass
class RunRecord:
    run_id: str
    kind: str = field(metadata=check(choices=KINDS))
    status: str = field(default="ok", metadata=check(choices=STATUSES))
    schema_version: int = SCHEMA_VERSION
    created_at: str | None = None
    command: list[str] = field(default_factory=list)
    provenance: Provenance | None = None
    model: ModelInfo = field(default_factory=ModelInfo)
    approach: str | None = field(default=None, metadata=check(choices=APPROACHES))
    domain: str | None = None
    evaluated: Evaluated | None = None
    starts_from: StartsFrom | None = None
    zero_shot_key: Json = None
    plan: PlanTag | None = None
    plan_key: str | None = None
    error: str | None = None
    api: Json = None  # API runs: requests, cache hits, tokens, cost
    train: TrainPart | None = None
    eval: EvalPart | None = None

    @property
    def scores(self) -> list[Score]:
        return self.eval.scores if self.eval else []

    @property
    def protocol(self):
        """The evaluation protocol the scores were made with (None for training-only records)."""
        return self.eval.config.protocol if self.eval and self.eval.config else None

    def outcomes_file(self, results_dir: str | Path) -> Path | None:
        """The outcomes file beside this record, confined to `results_dir` (a name, never a path elsewhere)."""
        name = self.eval.outcomes if self.eval else None
        if not name or Path(name).name != name or name in (".", ".."):
            return None
        return Path(results_dir) / name

    def to_dict(self) -> dict:
        return asdict(self)


# --- reading and writing ------------------------------------------------------------------------------------
def load_record(data, where: str = "") -> RunRecord:
    """The one strict loader of a record (a parsed JSON value); SchemaError names the field."""
    if not isinstance(data, dict):
        raise SchemaError(where, "not a dlm run record (not an object)")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaError(f"{where}.schema_version" if where else "schema_version", f"{version!r} is not a version")
    if version > SCHEMA_VERSION:
        raise SchemaError(where, f"schema_version {version} was written by a newer dlm; upgrade dlm to read it")
    if version == 1:
        data = migrate_v1(data)
    return load(RunRecord, data, where)


def as_record(record: dict | RunRecord) -> RunRecord:
    """The typed view of a record dlm has just built (a dict from evaluate / train / the cycle, which may carry
    printing-only fields such as `reused_from`)."""
    if isinstance(record, RunRecord):
        return record
    return load_record(json.loads(json.dumps(record, default=_json_default)))


def to_record(record: dict | RunRecord) -> RunRecord:
    """A record about to be written, checked against the schema: an unknown or ill-typed field is a bug here."""
    if isinstance(record, RunRecord):
        return record
    try:
        return load(RunRecord, json.loads(json.dumps(record, default=_json_default)), strict_keys=True)
    except SchemaError as err:
        raise ValueError(f"dlm built a record that does not fit its schema: {err}") from None


def _json_default(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    return str(obj)  # lm-eval's raw results hold objects such as a torch dtype: kept as their name


def write_record(results_dir: str | Path, record: dict | RunRecord) -> Path:
    """Write `record` as `<results_dir>/<run_id>.json` atomically (checked against the schema, secrets scrubbed).

    A kill at any point leaves either the previous state or the whole new file, never half a record; concurrent
    writers never clash because run ids are unique.
    """
    name, text = record_file(record)
    try:
        written = atomic_write(Path(results_dir) / name, text)
    except OSError as err:  # disk full, quota, read-only mount: the scores must not be lost with the error
        raise rescued([(name, text)], results_dir, err, f"the record {name}") from None
    remember_results_dir(results_dir)
    return written


def record_file(record: dict | RunRecord) -> tuple[str, str]:
    """(file name, text) of a record as `write_record` writes it: defaults filled in, checked, secrets scrubbed."""
    if isinstance(record, dict):
        record = dict(migrate_v1(record) if record.get("schema_version") == 1 else record)
        record.setdefault("schema_version", SCHEMA_VERSION)
        record.setdefault("run_id", new_run_id(str(record.get("kind", "run"))))
        record.setdefault("created_at", timestamp())
        record.setdefault("provenance", provenance())
    typed = to_record(record)
    return f"{typed.run_id}.json", json.dumps(scrub(typed.to_dict()), indent=2)


def read_record(path: str | Path) -> RunRecord:
    """One record file; SchemaError (or OSError / ValueError for an unreadable file) when it is not one."""
    path = Path(path)
    return load_record(json.loads(path.read_text(encoding="utf-8")), path.name)


def load_records(results_dir: str | Path) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """All readable records, oldest first, plus (file, reason) for every file that was skipped. A run id seen in
    two files (a copy under another name) counts once: the first file, the other skipped and named."""
    records: list[RunRecord] = []
    skipped: list[tuple[str, str]] = []
    directory = Path(results_dir)
    if not directory.is_dir():
        return records, skipped
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        if not path.is_file() or path.is_symlink():
            skipped.append((str(path), "not a regular file (a link or a folder)"))
            continue
        try:
            record = read_record(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            skipped.append((str(path), f"not valid JSON ({err.__class__.__name__})"))
            continue
        except SchemaError as err:
            skipped.append((str(path), str(err)))
            continue
        if record.run_id in seen:
            skipped.append((str(path), f"run {record.run_id} again (already read from {seen[record.run_id]})"))
            continue
        seen[record.run_id] = path.name
        records.append(record)
    records.sort(key=lambda r: (r.created_at or "", r.run_id))
    return records, skipped


# --- schema 1 (flat config dicts) -> 2 ---------------------------------------------------------------------------
def migrate_v1(data: dict) -> dict:
    """A schema-1 record in the shape of schema 2: the flat train/eval config dicts become the config dataclasses'
    fields (data parts -> --dataset/--datasets flags, the LoRA block -> lora_* settings, the evaluation's shots,
    seed, limit and prompt settings -> its protocol). Only the shape changes; no value is invented."""
    data = dict(data)
    train = data.get("train")
    if isinstance(train, dict) and isinstance(train.get("config"), dict):
        data["train"] = {**train, "config": _train_config_v1(train["config"])}
    evaluation = data.get("eval")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("config"), dict):
        data["eval"] = {**evaluation, "config": _eval_config_v1(evaluation["config"])}
    data["schema_version"] = SCHEMA_VERSION
    return data


def _train_config_v1(old: dict) -> dict:
    names = {f.name for f in fields(TrainConfig)}
    new = {k: v for k, v in old.items() if k in names and k not in ("lora", "protocol")}
    legacy_data = old.get("data") if isinstance(old.get("data"), dict) else {}
    listed = legacy_data.get("parts")  # a hostile file may put anything here: only a list of objects is read
    parts = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    if len(parts) == 1:
        new.update(dataset=parts[0].get("dataset"), dataset_config=parts[0].get("config"))
    elif parts:
        new.update(
            datasets=[p.get("dataset") for p in parts],
            dataset_configs=[p.get("config") or "None" for p in parts],
            mixture_rates=legacy_data.get("rates"),
        )
    lora = old.get("lora")
    if isinstance(lora, bool):
        new["lora"] = lora
    elif isinstance(lora, dict):
        new.update(
            lora=True,
            lora_r=lora.get("r", 16),
            lora_alpha=lora.get("alpha", 32),
            lora_dropout=lora.get("dropout", 0.05),
            lora_target_modules=lora.get("targets"),
            merge_lora=bool(lora.get("merge")),
        )
    new["protocol"] = (
        old.get("protocol")
        if isinstance(old.get("protocol"), dict)
        else {"chat_template": old.get("chat_template"), "system_instruction": old.get("system_instruction")}
    )
    return new


_EVAL_V1 = (
    "model",
    "peft",
    "data_dir",
    "results_dir",
    "trust_remote_code",
    "allow_pickle",
    "device",
    "allow_code_execution",
    "base_url",
    "api_key_env",
    "concurrency",
    "max_wait",
    "max_cost",
    "no_cache",
    "dry_run",
    "checkpoints",
)


def _eval_config_v1(old: dict) -> dict:
    new = {k: old[k] for k in _EVAL_V1 if k in old}
    if isinstance(old.get("protocol"), dict):  # already in the new shape
        return {**new, "protocol": old["protocol"]}
    protocol = {
        "tasks": old.get("tasks") or [],
        "num_fewshot": old.get("num_fewshot"),
        "limit": old.get("limit"),
        "chat_template": old.get("chat_template"),
        "system_instruction": old.get("system_instruction"),
        "fewshot_as_multiturn": bool(old.get("fewshot_as_multiturn")),
    }
    if "seed" in old:
        protocol["fewshot_seed"] = old["seed"]
    if "batch_size" in old:
        protocol["eval_batch_size"] = old["batch_size"]
    if "bootstrap_iters" in old:
        protocol["bootstrap_iters"] = old["bootstrap_iters"]
    new["protocol"] = protocol
    return new
