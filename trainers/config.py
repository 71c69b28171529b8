"""Configs as dataclasses, and every check of user input that needs no I/O, in one place.

The CLI and `main.py` build these from flags; the library only ever sees validated configs.
Checks that need I/O (does the dataset exist, does the checkpoint load) live next to that I/O and raise
`UserError` too.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from pathlib import Path

from dlm_data.errors import UserError

MODES = ("pretrain", "sft")
REPORT_TO = ("none", "tensorboard", "wandb")


def parse_config_name(value: str | None) -> str | None:
    """The seed plan writes `None` for 'no config' in --dataset_configs; accept that spelling everywhere."""
    if value is None or value.strip() in ("", "None", "none", "null", "-"):
        return None
    return value.strip()


# Numbers no real run uses: a typo (an extra zero, an exponent) fails here instead of as an allocation error
UPPER_BOUNDS = {"batch_size": 65536, "gradient_accumulation_steps": 1_000_000, "max_length": 1_048_576,
                "max_steps": 100_000_000, "save_total_limit": 100_000, "warmup_steps": 100_000_000}
MAX_LORA_RANK = 4096
MAX_RATE = 1e6


def check_seed(seed: int) -> None:
    if not isinstance(seed, int) or not (0 <= seed < 2**32):
        raise UserError(f"--seed must be an integer in [0, 2^32) (got {seed})")


def parse_rate(value) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise UserError(f"mixture rate '{value}' is not a number; give positive numbers like --mixture_rates 0.7 0.3")
    if math.isnan(rate) or math.isinf(rate) or rate <= 0 or rate > MAX_RATE:
        raise UserError(f"mixture rate {value} must be a positive number up to {MAX_RATE:g} (rates are relative); "
                        "e.g. --mixture_rates 0.7 0.3")
    return rate


@dataclass(frozen=True)
class DataSpec:
    """One dataset as the user names it: the id exactly as written (`glue`, `stanfordnlp/imdb`) and a config."""

    dataset: str
    config: str | None = None

    def label(self) -> str:
        return self.dataset + (f":{self.config}" if self.config else "")


@dataclass
class MixtureSpec:
    """One or more datasets with sampling rates. Rates are normalised to proportions that sum to 1."""

    parts: list[DataSpec]
    rates: list[float]

    @classmethod
    def single(cls, dataset: str, config: str | None = None) -> "MixtureSpec":
        return cls([DataSpec(dataset, parse_config_name(config))], [1.0])

    @classmethod
    def from_flags(cls, dataset=None, dataset_config=None, datasets=None, dataset_configs=None,
                   mixture_rates=None) -> "MixtureSpec":
        """Build from the seed plan's flags: --dataset X [--dataset_config C] or --datasets A B ... ."""
        if dataset and datasets:
            raise UserError("give either --dataset or --datasets, not both")
        if dataset:
            if dataset_configs or mixture_rates:
                raise UserError("--dataset_configs/--mixture_rates go with --datasets A B ...; "
                                "for one dataset use --dataset X --dataset_config C")
            return cls.single(dataset, dataset_config)
        if not datasets:
            raise UserError("no training data: give --dataset ID or --datasets A B --mixture_rates r1 r2")
        configs = list(dataset_configs) if dataset_configs else [None] * len(datasets)
        if len(configs) != len(datasets):
            raise UserError(f"--datasets has {len(datasets)} entries but --dataset_configs has {len(configs)}; "
                            "give one config per dataset (write None for 'no config')")
        if mixture_rates:
            rates = [parse_rate(r) for r in mixture_rates]
            if len(rates) != len(datasets):
                raise UserError(f"--datasets has {len(datasets)} entries but --mixture_rates has {len(rates)}; "
                                "give one rate per dataset")
        else:
            rates = [1.0] * len(datasets)
        total = sum(rates)
        return cls([DataSpec(d, parse_config_name(c)) for d, c in zip(datasets, configs)],
                   [r / total for r in rates])

    def label(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].label()
        return "+".join(f"{p.label()}@{r:.2f}" for p, r in zip(self.parts, self.rates))


@dataclass
class LoraSpec:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list[str] | None = None  # None: chosen per architecture (trainers/models.py)
    merge: bool = False  # also save a merged full model under <output_dir>/merged


@dataclass
class TrainConfig:
    model: str
    data: MixtureSpec
    mode: str
    max_steps: int
    output_dir: str | None = None  # default: checkpoints/<run id>
    batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_length: int = 256
    save_steps: int = 200
    save_total_limit: int = 3
    learning_rate: float | None = None  # None: per mode/method default (trainers/models.py: default_lr)
    warmup_steps: int = 0
    seed: int = 42
    data_fraction: float = 1.0
    lora: LoraSpec | None = None
    bf16: bool = False
    gradient_checkpointing: bool = False
    report_to: str = "none"
    resume: bool = False
    overwrite: bool = False
    logging_steps: int = 10
    data_dir: str | None = None
    results_dir: str = "results/runs"
    trust_remote_code: bool = False
    allow_pickle: bool = False  # load pickled (.bin) weights, which can run code when unpickled
    run_key: str | None = None  # a plan run's key: its output dir is refused to any other run key
    eval_steps: int | None = None  # learning curve: score the model every N optimizer steps (trainers/curve.py)
    eval_tasks: str | None = None  # comma-separated; default: the run's tasks
    eval_limit: float | None = 50  # documents per task for each curve point
    chat_template: str | None = None  # SFT prompts wrapped in this chat template (trainers/chat.py), saved with it
    system_instruction: str | None = None  # the system turn of those chat prompts

    def validate(self) -> "TrainConfig":
        if self.output_dir:
            out = Path(self.output_dir).expanduser().resolve()
            results = Path(self.results_dir).expanduser().resolve()
            if out == results or out in results.parents:  # --overwrite of the output dir must never reach records
                raise UserError(f"--output_dir '{self.output_dir}' and --results-dir '{self.results_dir}' overlap; "
                                "checkpoints and run records need separate directories")
        if self.mode not in MODES:
            raise UserError(f"unknown --mode '{self.mode}'; use --mode pretrain or --mode sft")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "max_length",
                     "save_steps", "save_total_limit", "logging_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"--{name} must be a positive integer (got {value})")
        for name, bound in UPPER_BOUNDS.items():
            if getattr(self, name) > bound:
                raise UserError(f"--{name} {getattr(self, name)} is beyond any real run (at most {bound:,}); "
                                "check the value")
        check_seed(self.seed)
        if self.max_length < 2:
            raise UserError(f"--max_length {self.max_length} leaves no next token to learn; use 2 or more "
                            "(typically 256-1024)")
        if not (0 < self.data_fraction <= 1) or math.isnan(self.data_fraction):
            raise UserError(f"--data_fraction must be in (0, 1] (got {self.data_fraction}); e.g. 0.25 for a quarter")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"--learning_rate must be a positive number (got {self.learning_rate})")
        if self.warmup_steps < 0:
            raise UserError(f"--warmup_steps must be >= 0 (got {self.warmup_steps})")
        if self.report_to not in REPORT_TO:
            raise UserError(f"--report_to must be one of {', '.join(REPORT_TO)} (got '{self.report_to}')")
        if self.resume and self.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pick one")
        if self.lora is not None:
            if self.lora.r <= 0 or self.lora.alpha <= 0:
                raise UserError("--lora_r and --lora_alpha must be positive integers")
            if self.lora.r > MAX_LORA_RANK:
                raise UserError(f"--lora_r {self.lora.r} is above {MAX_LORA_RANK}, wider than the layers it adapts; "
                                "typical ranks are 8-64")
            if not (0 <= self.lora.dropout < 1):
                raise UserError(f"--lora_dropout must be in [0, 1) (got {self.lora.dropout})")
        if self.eval_steps is not None and self.eval_steps <= 0:
            raise UserError(f"--eval_steps must be a positive number of optimizer steps (got {self.eval_steps})")
        if self.eval_limit is not None and not (self.eval_limit > 0 and math.isfinite(self.eval_limit)):
            raise UserError(f"--eval_limit must be a positive number of documents (got {self.eval_limit})")
        if self.mode == "pretrain" and (self.chat_template or self.system_instruction):
            raise UserError("--chat-template and --system-instruction shape SFT prompts; continued pretraining reads "
                            "plain text: drop them, or use --mode sft")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


API_PROVIDERS = ("openai", "anthropic", "openai-compatible")  # --model PROVIDER:NAME (harness_tasks/api_models.py)


def is_api_model(model: str | None) -> bool:
    provider, sep, name = str(model or "").partition(":")
    return bool(sep) and provider in API_PROVIDERS and bool(name.strip())


@dataclass
class EvalConfig:
    model: str
    tasks: list[str]
    peft: str | None = None
    num_fewshot: int | None = None  # None: each task's own default (zero-shot unless the task says otherwise)
    limit: float | None = None  # int-valued: first N docs; < 1: fraction (lm-eval semantics)
    batch_size: int = 8
    seed: int = 1234
    bootstrap_iters: int = 1000  # stderr of non-mean metrics; 0 disables (stderr "N/A")
    allow_code_execution: bool = False
    data_dir: str | None = None
    results_dir: str = "results/runs"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    device: str | None = None  # None: cuda if available, else cpu
    chat_template: str | None = None  # "default", a template name or a Jinja file (trainers/chat.py)
    system_instruction: str | None = None
    fewshot_as_multiturn: bool = False  # with a chat template: each shot its own user/assistant turn
    # API models (harness_tasks/api_models.py)
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 1
    max_wait: float = 300.0  # seconds of backoff one request may wait out (429 / 5xx) before the run is incomplete
    max_cost: float | None = None  # USD: refuse a run estimated above it
    no_cache: bool = False
    dry_run: bool = False  # print the estimate, send nothing
    checkpoints: bool = False  # score every checkpoint-N of the output dir `model` (harness_tasks/checkpoint_curve.py)

    def validate(self) -> "EvalConfig":
        if not self.tasks:
            raise UserError("no tasks given; e.g. --tasks fin_sentiment or --tasks dlm_finance (dlm tasks list)")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise UserError(f"--num_fewshot must be >= 0 (got {self.num_fewshot})")
        if self.limit is not None and not (self.limit > 0 and math.isfinite(self.limit)):
            raise UserError(f"--limit must be a positive finite number (got {self.limit}); leave it out for the "
                            "full test set")
        if self.limit is not None and self.limit >= 1 and not float(self.limit).is_integer():
            raise UserError(f"--limit {self.limit}: a count of documents is a whole number (a share is < 1)")
        if self.batch_size > UPPER_BOUNDS["batch_size"]:
            raise UserError(f"--eval_batch_size {self.batch_size} is beyond any real run (at most "
                            f"{UPPER_BOUNDS['batch_size']:,})")
        check_seed(self.seed)
        if self.batch_size <= 0:
            raise UserError(f"--batch_size must be a positive integer (got {self.batch_size})")
        if self.bootstrap_iters < 0:
            raise UserError("--bootstrap_iters must be >= 0")
        if self.concurrency < 1 or self.concurrency > 256:
            raise UserError(f"--concurrency must be between 1 and 256 (got {self.concurrency})")
        if not (self.max_wait >= 0 and math.isfinite(self.max_wait)):
            raise UserError(f"--max-wait must be a number of seconds >= 0 (got {self.max_wait})")
        if self.max_cost is not None and not (self.max_cost >= 0 and math.isfinite(self.max_cost)):
            raise UserError(f"--max-cost must be a dollar amount >= 0 (got {self.max_cost})")
        api = is_api_model(self.model)
        if (self.base_url or self.api_key_env) and not api:
            raise UserError("--base-url and --api-key-env go with an API model (--model openai:NAME, anthropic:NAME "
                            "or openai-compatible:NAME)")
        if api and (self.chat_template or self.peft):
            raise UserError(f"{self.model} is served: its server applies its own chat template and weights; drop "
                            "--chat-template / --peft")
        if self.fewshot_as_multiturn and not (self.chat_template or api):
            raise UserError("--fewshot-as-multiturn lays the shots out as chat turns, so it needs --chat-template "
                            "(e.g. --chat-template default)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)
