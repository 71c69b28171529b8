"""The one table of run settings, and the configs built from it.

Every command that takes run settings is generated from SETTINGS: `dlm train`, `dlm run`, `dlm eval` (cli.py),
`python main.py` (the study plan's spelling), the keys of plan files (study/plan.py) and the command lines that
`dlm plan --dry-run` prints (`command_line`). A default or a help string is written here and nowhere else.

Adding a setting is one row: `Setting("name", type, default, "help", TRAIN)` (or EVAL, or RUN_ONLY for `dlm run`
and main.py alone), then read `s["name"]` where the config is built below. Every flag is spelled with underscores
and with dashes (`--max_steps`, `--max-steps`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dlm_data.errors import UserError, suggest

# The commands a setting can belong to. "run" is `dlm run`, `python main.py` and plan files alike.
TRAIN = frozenset({"train", "run"})
EVAL = frozenset({"eval", "run"})
BOTH = frozenset({"train", "eval", "run"})
RUN_ONLY = frozenset({"run"})


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type  # str | int | float | bool
    default: object = None
    help: str = ""
    commands: frozenset = BOTH
    many: bool = False  # takes several values, as the study plan writes them: --datasets A B
    required: bool = False
    envvar: str | None = None
    hidden_aliases: tuple[str, ...] = ()  # old spellings that keep working, left out of --help
    command_defaults: dict = field(default_factory=dict)  # {command: default} where a command differs
    scores: bool = False  # part of what an evaluation-only run is (its plan key); the rest is about training

    def default_for(self, command: str):
        return self.command_defaults.get(command, self.default)

    def spellings(self) -> list[str]:
        return spellings(self.name)


def spellings(name: str) -> list[str]:
    """--max_steps and --max-steps: the study plan's underscores, and the dashes of most CLIs."""
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


SETTINGS = (
    Setting("model", str, help="hub id, alias (gpt2, gpt2-medium, qwen2-0.5b, tiny-gpt2) or checkpoint dir",
            required=True, scores=True),
    Setting("mode", str, "sft", "pretrain (packed continued pretraining) or sft (TRL SFTTrainer)", TRAIN,
            command_defaults={"train": "pretrain"}),
    Setting("dataset", str, help="dataset id as the study plan writes it", commands=TRAIN, scores=True),
    Setting("dataset_config", str, help="config of --dataset", commands=TRAIN, scores=True),
    Setting("datasets", str, help="mixture: --datasets A B ...", commands=TRAIN, many=True, scores=True),
    Setting("dataset_configs", str, help="one config per --datasets entry (None = no config)", commands=TRAIN,
            many=True, scores=True),
    Setting("mixture_rates", float, help="one sampling rate per --datasets entry", commands=TRAIN, many=True,
            scores=True),
    Setting("max_steps", int, 1000, "optimizer steps; 0 = evaluate the model as it is (dlm run)", TRAIN),
    Setting("evaluation_only", bool, False, "no training: zero-shot baseline of --model", RUN_ONLY, scores=True),
    Setting("output_dir", str, help="checkpoint dir (default checkpoints/<run>)", commands=TRAIN),
    Setting("batch_size", int, 4, "per-device training batch size", TRAIN),
    Setting("gradient_accumulation_steps", int, 4, "micro-batches per optimizer step", TRAIN),
    Setting("max_length", int, 256, "tokens per sequence", TRAIN),
    Setting("save_steps", int, 200, "checkpoint every N optimizer steps", TRAIN),
    Setting("save_total_limit", int, 3, "checkpoints kept", TRAIN),
    Setting("learning_rate", float, help="default depends on mode/LoRA", commands=TRAIN),
    Setting("warmup_steps", int, 0, "linear warmup steps", TRAIN),
    Setting("seed", int, 42, "random seed (data order and init; `dlm eval`: few-shot sampling)", BOTH,
            command_defaults={"eval": 1234}),
    Setting("data_fraction", float, 1.0, "train on this share of the data", TRAIN),
    Setting("lora", bool, False, "LoRA instead of full fine-tuning", TRAIN),
    Setting("lora_r", int, 16, "LoRA rank", TRAIN),
    Setting("lora_alpha", int, 32, "LoRA alpha", TRAIN),
    Setting("lora_dropout", float, 0.05, "LoRA dropout", TRAIN),
    Setting("lora_target_modules", str, help="override the per-architecture LoRA targets", commands=TRAIN,
            many=True),
    Setting("eval_steps", int, help="learning curve: score the model every N optimizer steps and at step 0",
            commands=TRAIN),
    Setting("eval_tasks", str, help="tasks of the curve points (default: the run's tasks)", commands=TRAIN),
    Setting("eval_limit", float, 50, "documents per task for each curve point", TRAIN),
    Setting("merge_lora", bool, False, "also save a merged full model", TRAIN),
    Setting("bf16", bool, False, "bf16 autocast on CPU (GPUs pick bf16/fp16 themselves)", TRAIN),
    Setting("gradient_checkpointing", bool, False, "recompute activations to save memory", TRAIN),
    Setting("report_to", str, "none", "none | tensorboard | wandb", TRAIN),
    Setting("resume", bool, False, "continue from the newest checkpoint in --output_dir", TRAIN),
    Setting("overwrite", bool, False, "replace a non-empty --output_dir", TRAIN),
    Setting("peft", str, help="LoRA adapter dir applied on top of --model", commands=frozenset({"eval"})),
    Setting("tasks", str, help="comma-separated tasks or groups (default: the data's domain group; dlm tasks list)",
            commands=EVAL, scores=True),
    Setting("transfer", bool, False, "also score the other domains' groups", RUN_ONLY, scores=True),
    Setting("num_fewshot", int, help="k in-context examples", commands=EVAL, scores=True),
    Setting("chat_template", str, help="wrap prompts in a chat template: `default` (the tokenizer's own), a template "
            "name, or a Jinja file; SFT prompts too", scores=True),
    Setting("system_instruction", str, help="system turn of every prompt (with --chat-template; plain text before "
            "the prompt without)", scores=True),
    Setting("fewshot_as_multiturn", bool, False, "with --chat-template: each shot as its own user/assistant turn",
            EVAL, scores=True),
    Setting("base_url", str, help="API models: the OpenAI-compatible server root, e.g. http://127.0.0.1:8000/v1",
            commands=EVAL, scores=True),
    Setting("api_key_env", str, help="API models: the environment variable holding the key (default OPENAI_API_KEY "
            "/ ANTHROPIC_API_KEY)", commands=EVAL, scores=True),
    Setting("concurrency", int, 1, "API models: requests in flight at once", EVAL, scores=True),
    Setting("max_wait", float, 300.0, "API models: seconds one request may wait out 429/5xx before the run stops "
            "incomplete", EVAL, scores=True),
    Setting("max_cost", float, help="API models: refuse a run estimated above this many US dollars", commands=EVAL,
            scores=True),
    Setting("no_cache", bool, False, "API models: neither read nor store responses", EVAL, scores=True),
    Setting("dry_run", bool, False, "API models: print requests, tokens and estimated cost; send nothing",
            frozenset({"eval"})),
    Setting("checkpoints", bool, False, "--model is a training output dir: score every checkpoint-N and the final "
            "model into one learning curve", frozenset({"eval"})),
    Setting("limit", float, help="first N documents per task (or a fraction < 1)", commands=EVAL, scores=True),
    Setting("eval_batch_size", int, 8, "evaluation batch size", EVAL, hidden_aliases=("batch_size",), scores=True),
    Setting("bootstrap_iters", int, 1000, "stderr resamples of non-mean metrics; 0 = none", EVAL, scores=True),
    Setting("allow_code_execution", bool, False, "let code tasks (BigCodeBench) execute generated code", EVAL,
            scores=True),
    Setting("data_dir", str, help="local dataset snapshots DIR/<owner>/<name>/ (default $DLM_DATA_DIR, else the hub)",
            envvar="DLM_DATA_DIR", scores=True),
    Setting("results_dir", str, "results/runs", "where run records are written", scores=True),
    Setting("trust_remote_code", bool, False, "allow model repos to run their own code (off by default)",
            scores=True),
    Setting("allow_pickle", bool, False, "load pickled .bin weights, which can run code when loaded (default: "
            "safetensors only)", scores=True),
)
BY_NAME = {s.name: s for s in SETTINGS}
RUN_SETTINGS = tuple(s for s in SETTINGS if "run" in s.commands)  # python main.py, dlm run, plan files
DEFAULTS = {s.name: s.default for s in RUN_SETTINGS}
EVAL_FLAGS = tuple(s.name for s in RUN_SETTINGS if s.scores)  # what an evaluation-only run uses


def for_command(command: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if command in s.commands)


def evaluates_only(s: dict) -> bool:
    return bool(s.get("evaluation_only")) or s.get("max_steps") == 0


# --- settings -> configs -----------------------------------------------------------------------------------
def _check_dirs(s: dict) -> None:
    from dlm_data.records import check_writable

    check_writable(s["results_dir"], "--results-dir")
    if s.get("output_dir"):
        check_writable(s["output_dir"], "--output_dir")
    check_data_dir(s.get("data_dir"))


def check_data_dir(data_dir: str | None) -> None:
    """A --data-dir that is not a folder would quietly mean "the hub": refused before any work."""
    from pathlib import Path

    from dlm_data.errors import UserError

    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise UserError(f"--data-dir {data_dir} is not a folder; give the folder that holds the snapshots "
                        "(<owner>/<name>/ inside, e.g. samples/), or leave it out to read the Hub")


def _filled(settings: dict, command: str) -> dict:
    allowed = {s.name: s.default_for(command) for s in for_command(command)}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise suggest(unknown[0], allowed, "setting", "python main.py --help lists them")
    s = {**allowed, **settings}
    if not s["model"]:
        raise UserError("--model is required, e.g. --model gpt2 (or a checkpoint dir)")
    _check_dirs(s)
    return s


def _data(s: dict):
    from trainers.config import MixtureSpec

    return MixtureSpec.from_flags(s["dataset"], s["dataset_config"], s["datasets"], s["dataset_configs"],
                                  s["mixture_rates"])


def train_config(settings: dict, command: str = "train", data=None):
    """Setting values (names as in SETTINGS, missing ones default) -> a validated trainers.config.TrainConfig.
    `data`: the MixtureSpec already built from these settings, if any (a cycle shares one with its training)."""
    from trainers.config import LoraSpec, TrainConfig

    s = _filled(settings, command)
    lora = (LoraSpec(s["lora_r"], s["lora_alpha"], s["lora_dropout"], s["lora_target_modules"], s["merge_lora"])
            if s["lora"] else None)
    return TrainConfig(
        model=s["model"], data=data or _data(s), mode=s["mode"], max_steps=s["max_steps"], output_dir=s["output_dir"],
        batch_size=s["batch_size"], gradient_accumulation_steps=s["gradient_accumulation_steps"],
        max_length=s["max_length"], save_steps=s["save_steps"], save_total_limit=s["save_total_limit"],
        learning_rate=s["learning_rate"], warmup_steps=s["warmup_steps"], seed=s["seed"],
        data_fraction=s["data_fraction"], lora=lora, bf16=s["bf16"],
        gradient_checkpointing=s["gradient_checkpointing"], report_to=s["report_to"], resume=s["resume"],
        overwrite=s["overwrite"], data_dir=s["data_dir"], results_dir=s["results_dir"],
        trust_remote_code=s["trust_remote_code"], allow_pickle=s["allow_pickle"], eval_steps=s["eval_steps"],
        eval_tasks=s["eval_tasks"], eval_limit=s["eval_limit"],
        # `dlm run`: the template shapes SFT prompts and the evaluation; pretraining text is never templated
        chat_template=s["chat_template"] if command == "train" or s["mode"] == "sft" else None,
        system_instruction=s["system_instruction"] if command == "train" or s["mode"] == "sft" else None).validate()


def eval_config(settings: dict):
    """`dlm eval` setting values -> a validated trainers.config.EvalConfig."""
    from trainers.config import EvalConfig

    s = _filled(settings, "eval")
    names = [t.strip() for t in (s["tasks"] or "").split(",") if t.strip()]
    return EvalConfig(model=s["model"], tasks=names, peft=s["peft"], num_fewshot=s["num_fewshot"],
                      limit=s["limit"], batch_size=s["eval_batch_size"], seed=s["seed"],
                      bootstrap_iters=s["bootstrap_iters"], allow_code_execution=s["allow_code_execution"],
                      data_dir=s["data_dir"], results_dir=s["results_dir"],
                      trust_remote_code=s["trust_remote_code"], allow_pickle=s["allow_pickle"],
                      chat_template=s["chat_template"], system_instruction=s["system_instruction"],
                      fewshot_as_multiturn=s["fewshot_as_multiturn"], **api_settings(s),
                      dry_run=s["dry_run"], checkpoints=s["checkpoints"]).validate()


def api_settings(s: dict) -> dict:
    return {name: s[name] for name in ("base_url", "api_key_env", "concurrency", "max_wait", "max_cost", "no_cache")}


def cycle_from_settings(settings: dict, command: list[str] | None = None, tags: dict | None = None):
    """`dlm run` / main.py / plan setting values -> a validated study.cycle.Cycle."""
    from study.cycle import Cycle

    s = _filled(settings, "run")
    evaluate_only = evaluates_only(s)
    data = None
    if s["dataset"] or s["datasets"] or not evaluate_only:  # training without data fails here, with the fix
        data = _data(s)
    train = None if evaluate_only else train_config(s, command="run", data=data)
    return Cycle(model=s["model"], data=data, train=train, tasks=s["tasks"], transfer=s["transfer"],
                 num_fewshot=s["num_fewshot"], limit=s["limit"], eval_batch_size=s["eval_batch_size"],
                 allow_code_execution=s["allow_code_execution"], data_dir=s["data_dir"],
                 results_dir=s["results_dir"], trust_remote_code=s["trust_remote_code"],
                 allow_pickle=s["allow_pickle"], bootstrap_iters=s["bootstrap_iters"],
                 chat_template=s["chat_template"], system_instruction=s["system_instruction"],
                 fewshot_as_multiturn=s["fewshot_as_multiturn"], api=api_settings(s), command=command,
                 tags=dict(tags or {}))


def command_line(settings: dict, program: tuple[str, ...] = ("dlm", "run")) -> list[str]:
    """The argv that reproduces `settings` (flags left at their defaults are omitted)."""
    argv = list(program)
    s = {**DEFAULTS, **settings}
    evaluate_only = evaluates_only(s)
    for setting in RUN_SETTINGS:
        value = s[setting.name]
        if value is None or value == setting.default or (evaluate_only and not setting.scores):
            continue
        if setting.kind is bool:
            argv.append(f"--{setting.name}")
        elif setting.many:
            argv += [f"--{setting.name}", *("None" if v is None else _plain(v) for v in value)]
        else:
            argv += [f"--{setting.name}", _plain(value)]
    return argv


def _plain(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
