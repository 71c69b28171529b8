"""The one description of a run: what it trains, how it is scored, where it reads and writes.

Every run setting is one dataclass field here. Its name, type, default, help, aliases and the commands that take it
are written once, as the field and its metadata (`setting(...)`), the way TRL's `SFTConfig` documents its fields.
From these fields dlm.settings generates the options of `dlm train`, `dlm eval` and `dlm run` (and so
`python main.py`), the keys of plan files and the command lines `dlm plan --dry-run` prints. Run records store these
same dataclasses (dlm.store.records), so a record reads back as the config that produced it.

- `Sources`: where a run reads and writes, and what it may execute (shared by training and evaluation).
- `DataChoice`: the training data as the study plan names it (--dataset, or --datasets with rates).
- `EvalProtocol`: how scores are obtained (tasks, shots, few-shot seed, chat template, limit or document subset,
  batch size, bootstrap, dtype). Built once per command and handed, whole, to every scorer.
- `TrainConfig`: one training run (it carries the protocol: SFT prompts and learning-curve points use it).
- `EvalConfig`: one evaluation (a model, a protocol, API options).
- `RunConfig`: `dlm run` / main.py / a plan run: a TrainConfig or nothing, and one evaluation.

Every check of user input that needs no I/O is a `validate()` here; checks that need I/O (does the dataset exist,
does the checkpoint load) live next to that I/O and raise UserError too.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path

from dlm.errors import UserError

# The commands a setting belongs to. "run" is `dlm run`, `python main.py` and plan files alike.
TRAIN = frozenset({"train", "run"})
EVAL = frozenset({"eval", "run"})
ALL = frozenset({"train", "eval", "run"})
RUN_ONLY = frozenset({"run"})
EVAL_ONLY = frozenset({"eval"})
TRAIN_ONLY = frozenset({"train"})
DRY_RUN = frozenset({"train", "eval"})  # `dlm run` and plans have their own: `dlm plan --dry-run`

MODES = ("pretrain", "sft")
REPORT_TO = ("none", "tensorboard", "wandb")
API_PROVIDERS = ("openai", "anthropic", "openai-compatible")  # --model PROVIDER:NAME (harness_tasks/api_models.py)
# --model aliases: hub ids, and the tiny model built locally (trainers/models.py loads them; dlm/data/hub.py asks
# the Hub for them before a command's heavy imports)
MODEL_ALIASES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "qwen2-0.5b": "Qwen/Qwen2-0.5B",
}
LOCAL_MODEL_ALIASES = ("tiny-gpt2", "shrunk-gpt2", "shrunk-qwen2")  # built on first use (trainers/)
EVAL_DTYPE = "float32"  # every evaluation scores float32 weights, also a model handed over from bf16 training

# Numbers no real run uses: a typo (an extra zero, an exponent) fails here instead of as an allocation error
UPPER_BOUNDS = {
    "batch_size": 65536,
    "gradient_accumulation_steps": 1_000_000,
    "max_length": 1_048_576,
    "max_steps": 100_000_000,
    "save_total_limit": 100_000,
    "warmup_steps": 100_000_000,
    "eval_batch_size": 65536,
    "bootstrap_iters": 1_000_000,
    "num_fewshot": 10_000,
    "eval_steps": 100_000_000,
    "limit": 100_000_000,
    "eval_limit": 100_000_000,
    "save_steps": 100_000_000,
    "learning_rate": 10.0,
    "lora_alpha": 1_000_000,
}
MAX_LORA_RANK = 4096
MAX_RATE = 1e6


def setting(
    default=None,
    help: str = "",
    commands: frozenset = ALL,
    *,
    required: bool = False,
    envvar: str | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
    command_defaults: dict[str, object] | None = None,
    scores: bool = False,
    split: str | None = None,
):
    """A run setting: a dataclass field whose metadata generates its command-line option and plan key.

    commands: where it is an option; aliases: {command: extra names}, hidden from --help (old spellings);
    command_defaults: {command: default} where one command differs; scores: part of what an evaluation-only run is
    (its plan key keeps it); split: the option is text split on this character into a tuple (--tasks a,b)."""
    metadata = {
        "help": help,
        "commands": commands,
        "required": required,
        "envvar": envvar,
        "aliases": aliases or {},
        "command_defaults": command_defaults or {},
        "scores": scores,
        "split": split,
    }
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults are written as tuples")
    return field(default=default, metadata=metadata)


def internal(default=MISSING, factory=MISSING):
    """A field that no command line sets: filled by the code that builds the config."""
    return field(default=default, default_factory=factory, metadata={"internal": True})


def is_api_model(model: str | None) -> bool:
    provider, sep, name = str(model or "").partition(":")
    return bool(sep) and provider in API_PROVIDERS and bool(name.strip())


def parse_config_name(value: str | None) -> str | None:
    """The seed plan writes `None` for 'no config' in --dataset_configs; accept that spelling everywhere."""
    if value is None or value.strip() in ("", "None", "none", "null", "-"):
        return None
    return value.strip()


def check_seed(seed: int, flag: str = "--seed") -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not (0 <= seed < 2**32):
        raise UserError(f"{flag} must be an integer in [0, 2^32) (got {seed})")


def parse_rate(value) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise UserError(
            f"mixture rate '{value}' is not a number; give positive numbers like --mixture_rates 0.7 0.3"
        ) from None
    if math.isnan(rate) or math.isinf(rate) or rate <= 0 or rate > MAX_RATE:
        raise UserError(
            f"mixture rate {value} must be a positive number up to {MAX_RATE:g} (rates are relative); "
            "e.g. --mixture_rates 0.7 0.3"
        )
    return rate


def _bounded(name: str, value, flag: str | None = None) -> None:
    bound = UPPER_BOUNDS.get(name)
    if bound is not None and value is not None and value > bound:
        raise UserError(f"--{flag or name} {value:g} is beyond any real run (at most {bound:,}); check the value")


# --- the parts of a training data choice ---------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """One dataset as the user names it: the id exactly as written (`glue`, `stanfordnlp/imdb`) and a config."""

    dataset: str
    config: str | None = None

    def label(self) -> str:
        return self.dataset + (f":{self.config}" if self.config else "")


@dataclass(frozen=True)
class MixtureSpec:
    """One or more datasets with sampling rates, normalised to proportions that sum to 1."""

    parts: tuple[DataSpec, ...]
    rates: tuple[float, ...]

    @classmethod
    def single(cls, dataset: str, config: str | None = None) -> MixtureSpec:
        return cls((DataSpec(dataset, parse_config_name(config)),), (1.0,))

    @classmethod
    def from_flags(cls, **flags) -> MixtureSpec:
        """The mixture that the data flags (dataset=..., or datasets=... with configs and rates) name."""
        return DataChoice(**{k: tuple(v) if isinstance(v, list) else v for k, v in flags.items()}).data

    def label(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].label()
        return "+".join(f"{p.label()}@{r:.2f}" for p, r in zip(self.parts, self.rates))


@dataclass(frozen=True)
class LoraSpec:
    r: int
    alpha: int
    dropout: float
    targets: tuple[str, ...] | None  # None: chosen per architecture (trainers/models.py)
    merge: bool  # also save a merged full model under <output_dir>/merged


# --- the settings ----------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Sources:
    """Where a run reads and writes, and what it may execute: shared by training and evaluation."""

    model: str | None = setting(
        None,
        "hub id, alias (gpt2, gpt2-medium, qwen2-0.5b, or tiny-gpt2: built on first use and cached in "
        "$DLM_CACHE, default ~/.cache/dlm) or checkpoint dir",
        required=True,
        scores=True,
    )
    data_dir: str | None = setting(
        None,
        "local dataset snapshots DIR/<owner>/<name>/ (default $DLM_DATA_DIR, else the hub)",
        envvar="DLM_DATA_DIR",
        scores=True,
    )
    results_dir: str = setting("runs", "where run records are written", scores=True)
    trust_remote_code: bool = setting(False, "allow model repos to run their own code (off by default)", scores=True)
    allow_pickle: bool = setting(
        False, "load pickled .bin weights, which can run code when loaded (default: safetensors only)", scores=True
    )
    dry_run: bool = setting(
        False,
        "run nothing: train prints the run's estimated time and peak memory; eval of an API model prints its "
        "requests, tokens and estimated cost and sends nothing",
        DRY_RUN,
    )

    def validate_sources(self) -> None:
        if not self.model or not str(self.model).strip():
            raise UserError("--model is required, e.g. --model gpt2 (or a checkpoint dir)")
        if not str(self.results_dir).strip():
            raise UserError("--results-dir is empty; give a folder, e.g. --results-dir runs")
        if self.data_dir is not None and not str(self.data_dir).strip():
            raise UserError("--data-dir is empty; give the folder that holds the snapshots, or leave it out")


@dataclass(kw_only=True)
class DataChoice:
    """The training data, as the study plan writes it."""

    dataset: str | None = setting(None, "dataset id as the study plan writes it", TRAIN, scores=True)
    dataset_config: str | None = setting(None, "config of --dataset", TRAIN, scores=True)
    datasets: tuple[str, ...] | None = setting(None, "mixture: --datasets A B ...", TRAIN, scores=True)
    dataset_configs: tuple[str, ...] | None = setting(
        None, "one config per --datasets entry (None = no config)", TRAIN, scores=True
    )
    mixture_rates: tuple[float, ...] | None = setting(
        None, "one sampling rate per --datasets entry", TRAIN, scores=True
    )

    def has_data(self) -> bool:
        return bool(self.dataset or self.datasets)

    @property
    def data(self) -> MixtureSpec:
        """The mixture these flags name (checked: --dataset X [--dataset_config C] or --datasets A B ...)."""
        if self.dataset and self.datasets:
            raise UserError("give either --dataset or --datasets, not both")
        if self.dataset:
            if self.dataset_configs or self.mixture_rates:
                raise UserError(
                    "--dataset_configs/--mixture_rates go with --datasets A B ...; "
                    "for one dataset use --dataset X --dataset_config C"
                )
            return MixtureSpec.single(self.dataset, self.dataset_config)
        if not self.datasets:
            raise UserError("no training data: give --dataset ID or --datasets A B --mixture_rates r1 r2")
        configs = list(self.dataset_configs) if self.dataset_configs else [None] * len(self.datasets)
        if len(configs) != len(self.datasets):
            raise UserError(
                f"--datasets has {len(self.datasets)} entries but --dataset_configs has {len(configs)}; "
                "give one config per dataset (write None for 'no config')"
            )
        if self.mixture_rates:
            rates = [parse_rate(r) for r in self.mixture_rates]
            if len(rates) != len(self.datasets):
                raise UserError(
                    f"--datasets has {len(self.datasets)} entries but --mixture_rates has {len(rates)}; "
                    "give one rate per dataset"
                )
        else:
            rates = [1.0] * len(self.datasets)
        total = sum(rates)
        return MixtureSpec(
            tuple(DataSpec(d, parse_config_name(c)) for d, c in zip(self.datasets, configs)),
            tuple(r / total for r in rates),
        )


@dataclass(frozen=True, kw_only=True)
class EvalProtocol:
    """How scores are obtained. Two scores compare only when their protocols agree (results/ says where not)."""

    tasks: tuple[str, ...] = setting(
        (),
        "comma-separated tasks or groups (default: the data's domain group; dlm tasks list)",
        EVAL,
        scores=True,
        split=",",
    )
    num_fewshot: int | None = setting(None, "k in-context examples", ALL, scores=True)
    fewshot_seed: int = setting(
        1234,
        "seed of the few-shot sampling (and lm-eval's other random draws)",
        ALL,
        aliases={"eval": ("seed",)},
        scores=True,
    )
    chat_template: str | None = setting(
        None,
        "wrap prompts in a chat template: `default` (the tokenizer's own; also what a bare --chat-template means), "
        "a template name, or a Jinja file; SFT prompts too",
        scores=True,
    )
    system_instruction: str | None = setting(
        None, "system turn of every prompt (with --chat-template; plain text before the prompt without)", scores=True
    )
    fewshot_as_multiturn: bool = setting(
        False, "with --chat-template: each shot as its own user/assistant turn", ALL, scores=True
    )
    limit: float | None = setting(None, "first N documents per task (or a fraction < 1)", EVAL, scores=True)
    eval_batch_size: int = setting(8, "evaluation batch size", ALL, aliases={"eval": ("batch_size",)}, scores=True)
    bootstrap_iters: int = setting(1000, "stderr resamples of non-mean metrics; 0 = none", ALL, scores=True)
    # a fixed subset of documents per task, by index into the scored split (learning-curve points); the hashes of
    # the documents scored are in the outcomes, so a subset is recorded by document hash
    documents: tuple[tuple[str, tuple[int, ...]], ...] | None = internal(None)
    dtype: str = internal(EVAL_DTYPE)

    def validate(self, served: bool = False) -> EvalProtocol:
        """`served`: an API model, which lays few-shot examples out as chat turns without a template of ours."""
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise UserError(f"--num_fewshot must be >= 0 (got {self.num_fewshot})")
        _bounded("num_fewshot", self.num_fewshot)
        check_seed(self.fewshot_seed, "--fewshot_seed (dlm eval: --seed)")
        if self.limit is not None and not (self.limit > 0 and math.isfinite(self.limit)):
            raise UserError(
                f"--limit must be a positive finite number (got {self.limit}); leave it out for the full test set"
            )
        if self.limit is not None and self.limit >= 1 and not float(self.limit).is_integer():
            raise UserError(f"--limit {self.limit}: a count of documents is a whole number (a share is < 1)")
        _bounded("limit", self.limit)
        if self.eval_batch_size <= 0:
            raise UserError(f"--eval_batch_size must be a positive integer (got {self.eval_batch_size})")
        _bounded("eval_batch_size", self.eval_batch_size)
        if self.bootstrap_iters < 0:
            raise UserError("--bootstrap_iters must be >= 0")
        _bounded("bootstrap_iters", self.bootstrap_iters)
        if self.fewshot_as_multiturn and not (self.chat_template or served):
            raise UserError(
                "--fewshot-as-multiturn lays the shots out as chat turns, so it needs --chat-template "
                "(e.g. --chat-template default)"
            )
        if self.limit is not None and self.documents is not None:
            raise UserError("a protocol scores either the first --limit documents or a fixed subset, not both")
        return self

    def with_tasks(self, tasks) -> EvalProtocol:
        return replace(self, tasks=tuple(tasks))

    def subset(self) -> dict[str, list[int]] | None:
        """lm-eval's `samples` argument: {task: document indices}, or None for all (or the first --limit)."""
        return None if self.documents is None else {task: list(indices) for task, indices in self.documents}

    def measurement(self) -> dict:
        """Every field that changes what a task's score is (not which tasks, nor batch size or the stderr's
        resample count): two evaluations of one model that agree on these give the same scores."""
        return {
            "num_fewshot": self.num_fewshot,
            "fewshot_seed": self.fewshot_seed,
            "chat_template": self.chat_template,
            "system_instruction": self.system_instruction,
            "fewshot_as_multiturn": self.fewshot_as_multiturn,
            "limit": None if self.limit is None else float(self.limit),
            "documents": None if self.documents is None else [[t, list(i)] for t, i in self.documents],
            "dtype": self.dtype,
        }


@dataclass(kw_only=True)
class TrainConfig(Sources, DataChoice):
    """One training run: continued pretraining or SFT (full or LoRA), and its learning-curve points."""

    mode: str = setting(
        "sft",
        "pretrain (packed continued pretraining) or sft (TRL SFTTrainer)",
        TRAIN,
        command_defaults={"train": "pretrain"},
    )
    max_steps: int = setting(1000, "optimizer steps; 0 = evaluate the model as it is (dlm run)", TRAIN)
    output_dir: str | None = setting(None, "checkpoint dir (default checkpoints/<run>)", TRAIN)
    batch_size: int = setting(4, "per-device training batch size", TRAIN)
    gradient_accumulation_steps: int = setting(4, "micro-batches per optimizer step", TRAIN)
    max_length: int = setting(256, "tokens per sequence", TRAIN)
    save_steps: int = setting(200, "checkpoint every N optimizer steps", TRAIN)
    save_total_limit: int = setting(3, "checkpoints kept", TRAIN)
    learning_rate: float | None = setting(None, "default depends on mode/LoRA", TRAIN)
    warmup_steps: int = setting(0, "linear warmup steps", TRAIN)
    seed: int = setting(42, "random seed of training (data order and initialisation)", TRAIN)
    data_fraction: float = setting(1.0, "train on this share of the data", TRAIN)
    lora: bool = setting(False, "LoRA instead of full fine-tuning", TRAIN)
    lora_r: int = setting(16, "LoRA rank", TRAIN)
    lora_alpha: int = setting(32, "LoRA alpha", TRAIN)
    lora_dropout: float = setting(0.05, "LoRA dropout", TRAIN)
    lora_target_modules: tuple[str, ...] | None = setting(None, "override the per-architecture LoRA targets", TRAIN)
    merge_lora: bool = setting(False, "also save a merged full model", TRAIN)
    eval_steps: int | None = setting(
        None, "learning curve: score the model every N optimizer steps and at step 0", TRAIN
    )
    eval_tasks: str | None = setting(None, "tasks of the curve points (default: the run's tasks)", TRAIN)
    eval_limit: float | None = setting(50, "documents per task for each curve point", TRAIN)
    bf16: bool = setting(False, "bf16 autocast on CPU (GPUs pick bf16/fp16 themselves)", TRAIN)
    gradient_checkpointing: bool = setting(False, "recompute activations to save memory", TRAIN)
    report_to: str = setting("none", "none | tensorboard | wandb", TRAIN)
    resume: bool = setting(False, "continue from the newest checkpoint in --output_dir", TRAIN)
    target_device: str | None = setting(
        None,
        "with --dry-run: the device to size the run for (t4, v100, l4, a10, a100, h100, h200 or cpu; default: the "
        "GPU at hand, else cpu)",
        TRAIN_ONLY,
    )
    overwrite: bool = setting(False, "replace a non-empty --output_dir", TRAIN)
    # the evaluation protocol of the run: SFT prompts are rendered as it renders them, curve points score with it
    protocol: EvalProtocol = internal(factory=EvalProtocol)
    run_key: str | None = internal(None)  # a plan run's key: its output dir is refused to any other run key
    logging_steps: int = internal(10)

    @property
    def adapter(self) -> LoraSpec | None:
        """The LoRA adapter to train, or None for full fine-tuning."""
        if not self.lora:
            return None
        return LoraSpec(
            self.lora_r,
            self.lora_alpha,
            self.lora_dropout,
            tuple(self.lora_target_modules) if self.lora_target_modules else None,
            self.merge_lora,
        )

    @property
    def chat_template(self) -> str | None:  # SFT prompts; pretraining text is never templated
        return self.protocol.chat_template if self.mode == "sft" else None

    @property
    def system_instruction(self) -> str | None:
        return self.protocol.system_instruction if self.mode == "sft" else None

    def validate(self) -> TrainConfig:
        self.validate_sources()
        self.data  # noqa: B018 (the data flags are checked by building the mixture)
        if self.output_dir is not None:
            if not str(self.output_dir).strip():
                raise UserError("--output_dir is empty; give a folder, or leave it out for checkpoints/<run>")
            out = Path(self.output_dir).expanduser().resolve()
            results = Path(self.results_dir).expanduser().resolve()
            if out == results or out in results.parents:  # --overwrite of the output dir must never reach records
                raise UserError(
                    f"--output_dir '{self.output_dir}' and --results-dir '{self.results_dir}' overlap; "
                    "checkpoints and run records need separate directories"
                )
        if self.mode not in MODES:
            raise UserError(f"unknown --mode '{self.mode}'; use --mode pretrain or --mode sft")
        for name in (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "save_steps",
            "save_total_limit",
            "logging_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"--{name} must be a positive integer (got {value})")
            _bounded(name, value)
        _bounded("warmup_steps", self.warmup_steps)
        check_seed(self.seed)
        if self.max_length < 2:
            raise UserError(
                f"--max_length {self.max_length} leaves no next token to learn; use 2 or more (typically 256-1024)"
            )
        if not (0 < self.data_fraction <= 1) or math.isnan(self.data_fraction):
            raise UserError(f"--data_fraction must be in (0, 1] (got {self.data_fraction}); e.g. 0.25 for a quarter")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"--learning_rate must be a positive number (got {self.learning_rate})")
        _bounded("learning_rate", self.learning_rate)
        if self.warmup_steps < 0:
            raise UserError(f"--warmup_steps must be >= 0 (got {self.warmup_steps})")
        if self.report_to not in REPORT_TO:
            raise UserError(f"--report_to must be one of {', '.join(REPORT_TO)} (got '{self.report_to}')")
        if self.resume and self.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pick one")
        if self.target_device and not self.dry_run:
            raise UserError("--target-device sizes a dry run; add --dry-run (a real run trains where it is)")
        if self.lora:
            if self.lora_r <= 0 or self.lora_alpha <= 0:
                raise UserError("--lora_r and --lora_alpha must be positive integers")
            _bounded("lora_alpha", self.lora_alpha)
            if self.lora_r > MAX_LORA_RANK:
                raise UserError(
                    f"--lora_r {self.lora_r} is above {MAX_LORA_RANK}, wider than the layers it adapts; "
                    "typical ranks are 8-64"
                )
            if not (0 <= self.lora_dropout < 1):
                raise UserError(f"--lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if self.eval_steps is not None and self.eval_steps <= 0:
            raise UserError(f"--eval_steps must be a positive number of optimizer steps (got {self.eval_steps})")
        _bounded("eval_steps", self.eval_steps)
        if self.eval_limit is not None and not (self.eval_limit > 0 and math.isfinite(self.eval_limit)):
            raise UserError(f"--eval_limit must be a positive number of documents (got {self.eval_limit})")
        _bounded("eval_limit", self.eval_limit)
        self.protocol.validate()
        return self

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.mixture_rates:  # the command line hands them over as text; the record holds numbers
            out["mixture_rates"] = [parse_rate(r) for r in self.mixture_rates]
        return out


@dataclass(kw_only=True)
class EvalConfig(Sources):
    """One evaluation: a model (hub id, alias, checkpoint, adapter or API model) scored under one protocol."""

    peft: str | None = setting(None, "LoRA adapter dir applied on top of --model", EVAL_ONLY)
    checkpoints: bool = setting(
        False,
        "--model is a training output dir: score every checkpoint-N and the final model into one learning curve",
        EVAL_ONLY,
    )
    allow_code_execution: bool = setting(
        False, "let code tasks (BigCodeBench) execute generated code", EVAL, scores=True
    )
    base_url: str | None = setting(
        None, "API models: the OpenAI-compatible server root, e.g. http://127.0.0.1:8000/v1", EVAL, scores=True
    )
    api_key_env: str | None = setting(
        None,
        "API models: the environment variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)",
        EVAL,
        scores=True,
    )
    concurrency: int = setting(1, "API models: requests in flight at once", EVAL, scores=True)
    max_wait: float = setting(
        300.0,
        "API models: seconds one request may take, 429/5xx backoff included, before the run stops incomplete",
        EVAL,
        scores=True,
    )
    max_cost: float | None = setting(
        None, "API models: refuse a run estimated above this many US dollars", EVAL, scores=True
    )
    no_cache: bool = setting(False, "API models: neither read nor store responses", EVAL, scores=True)
    # lm-eval's own output files, under lm_eval's spellings (harness_tasks/lm_eval_files.py); where files go, not
    # what is scored, so no plan key holds them (plan/file.py NOT_IN_KEY)
    output_path: str | None = setting(
        None,
        "also write lm-eval's results file: DIR/<model>/results_<time>.json (FILE.json: FILE_<time>.json), "
        "lm-eval's keys plus dlm's under `dlm`",
        EVAL,
        scores=True,
    )
    log_samples: bool = setting(
        False,
        "with --output_path: also lm-eval's samples_<task>_<time>.jsonl (every prompt and response)",
        EVAL,
        scores=True,
    )
    protocol: EvalProtocol = internal(factory=EvalProtocol)
    device: str | None = internal(None)  # None: cuda if available, else cpu

    def validate(self) -> EvalConfig:
        self.validate_sources()
        if not self.protocol.tasks:
            raise UserError("no tasks given; e.g. --tasks fin_sentiment or --tasks dlm_finance (dlm tasks list)")
        api = is_api_model(self.model)
        self.protocol.validate(served=api)
        if self.concurrency < 1 or self.concurrency > 256:
            raise UserError(f"--concurrency must be between 1 and 256 (got {self.concurrency})")
        if not (self.max_wait >= 0 and math.isfinite(self.max_wait)) or self.max_wait > 86_400:
            raise UserError(f"--max-wait must be a number of seconds in [0, 86400] (got {self.max_wait})")
        if self.max_cost is not None and not (self.max_cost >= 0 and math.isfinite(self.max_cost)):
            raise UserError(f"--max-cost must be a dollar amount >= 0 (got {self.max_cost})")
        if (self.base_url or self.api_key_env) and not api:
            raise UserError(
                "--base-url and --api-key-env go with an API model (--model openai:NAME, anthropic:NAME "
                "or openai-compatible:NAME)"
            )
        if self.output_path is not None and not str(self.output_path).strip():
            raise UserError("--output_path is empty; give a folder for lm-eval's files, or leave it out")
        if self.log_samples and not self.output_path:
            raise UserError("--log_samples writes lm-eval's samples files under --output_path; add --output_path DIR")
        if self.output_path and self.checkpoints:
            raise UserError(
                "--output_path writes the files of one model; with --checkpoints, run `dlm eval --model "
                "OUTPUT_DIR/checkpoint-N --output_path DIR` for each checkpoint whose lm-eval files you want"
            )
        if api and (self.protocol.chat_template or self.peft):
            raise UserError(
                f"{self.model} is served: its server applies its own chat template and weights; drop "
                "--chat-template / --peft"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(kw_only=True)
class RunConfig:
    """`dlm run`, `python main.py`, one plan run: train (or not) and evaluate, one record."""

    evaluation_only: bool = setting(False, "no training: zero-shot baseline of --model", RUN_ONLY, scores=True)
    transfer: bool = setting(False, "also score the other domains' groups", RUN_ONLY, scores=True)
    train: TrainConfig | None = internal(None)  # None: evaluate the model as it is
    evaluation: EvalConfig = internal()  # its protocol's tasks are empty until chosen from the data's domain
    data: MixtureSpec | None = internal(None)  # the data named (an evaluation-only run takes its domain from it)
    command: tuple[str, ...] | None = internal(None)  # recorded as the run's command; default sys.argv
    tags: dict = internal(factory=dict)  # merged into the record (plans put their run key here)

    @property
    def model(self) -> str:
        return self.evaluation.model

    @property
    def protocol(self) -> EvalProtocol:
        return self.evaluation.protocol
