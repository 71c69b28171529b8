"""The study plan's own command line, mapped onto the same cycle as `dlm run`:

    python main.py --model gpt2 --dataset zeroshot/twitter-financial-news-sentiment --mode sft --max_steps 1000
    python main.py --model gpt2 --datasets gbharti/finance-alpaca LLukas22/fiqa --dataset_configs None None \
        --mixture_rates 0.7 0.3 --mode pretrain --max_steps 2000
    python main.py --model gpt2 --dataset takala/financial_phrasebank --mode sft --max_steps 0 --evaluation_only

Every flag is spelled as in the plan (underscores); dashes work too (`--max-steps`). FLAGS below is the one
list of run settings: this parser, `dlm plan` files (their keys are these names) and the commands a plan's
--dry-run prints are all built from it. Mistakes print "error: ..." and exit with code 2, like `dlm`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from trainers.errors import UserError


@dataclass(frozen=True)
class Flag:
    name: str
    kind: type  # str | int | float | bool
    default: object = None
    many: bool = False  # takes several values, as the plan writes them: --datasets A B
    help: str = ""


FLAGS = (
    Flag("model", str, help="hub id, alias (gpt2, gpt2-medium, qwen2-0.5b, tiny-gpt2) or checkpoint dir"),
    Flag("mode", str, "sft", help="pretrain (packed continued pretraining) or sft"),
    Flag("dataset", str, help="dataset id as the study plan writes it"),
    Flag("dataset_config", str, help="config of --dataset"),
    Flag("datasets", str, many=True, help="mixture: --datasets A B ..."),
    Flag("dataset_configs", str, many=True, help="one config per --datasets entry (None = no config)"),
    Flag("mixture_rates", float, many=True, help="one sampling rate per --datasets entry"),
    Flag("max_steps", int, 1000, help="optimizer steps; 0 = evaluate the model as it is"),
    Flag("evaluation_only", bool, False, help="no training: zero-shot baseline of --model"),
    Flag("output_dir", str, help="checkpoint dir (default checkpoints/<run>)"),
    Flag("batch_size", int, 4),
    Flag("gradient_accumulation_steps", int, 4),
    Flag("max_length", int, 256, help="tokens per sequence"),
    Flag("save_steps", int, 200),
    Flag("save_total_limit", int, 3),
    Flag("learning_rate", float, help="default depends on mode/LoRA"),
    Flag("warmup_steps", int, 0),
    Flag("seed", int, 42),
    Flag("data_fraction", float, 1.0, help="train on this share of the data"),
    Flag("lora", bool, False, help="LoRA instead of full fine-tuning"),
    Flag("lora_r", int, 16),
    Flag("lora_alpha", int, 32),
    Flag("lora_dropout", float, 0.05),
    Flag("lora_target_modules", str, many=True, help="override the per-architecture LoRA targets"),
    Flag("merge_lora", bool, False, help="also save a merged full model"),
    Flag("bf16", bool, False),
    Flag("gradient_checkpointing", bool, False),
    Flag("report_to", str, "none", help="none | tensorboard | wandb"),
    Flag("resume", bool, False, help="continue from the newest checkpoint in --output_dir"),
    Flag("overwrite", bool, False, help="replace a non-empty --output_dir"),
    Flag("tasks", str, help="comma-separated tasks or groups (default: the data's domain group)"),
    Flag("transfer", bool, False, help="also score the other domains' groups"),
    Flag("num_fewshot", int, help="k in-context examples"),
    Flag("limit", float, help="first N documents per task (or a fraction < 1)"),
    Flag("eval_batch_size", int, 8),
    Flag("bootstrap_iters", int, 1000, help="stderr resamples of non-mean metrics; 0 = none"),
    Flag("allow_code_execution", bool, False, help="let code tasks execute generated code"),
    Flag("data_dir", str, help="local dataset snapshots DIR/<owner>/<name>/ (default $DLM_DATA_DIR, else the hub)"),
    Flag("results_dir", str, "results/runs", help="where run records are written"),
    Flag("trust_remote_code", bool, False),
)
DEFAULTS = {f.name: f.default for f in FLAGS}
# what an evaluation-only run (--evaluation_only / --max_steps 0) uses; every other flag is about training
EVAL_FLAGS = ("model", "dataset", "dataset_config", "datasets", "dataset_configs", "mixture_rates", "evaluation_only",
              "tasks", "transfer", "num_fewshot", "limit", "eval_batch_size", "bootstrap_iters",
              "allow_code_execution", "data_dir", "results_dir", "trust_remote_code")
BY_NAME = {f.name: f for f in FLAGS}


def cycle_from_settings(settings: dict, command: list[str] | None = None, tags: dict | None = None):
    """Flag values (names as in FLAGS, missing ones default) -> a validated pipeline.Cycle."""
    from pipeline import Cycle
    from trainers.config import LoraSpec, MixtureSpec, TrainConfig

    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        from trainers.errors import suggest

        raise suggest(unknown[0], DEFAULTS, "setting", "python main.py --help lists them")
    s = {**DEFAULTS, **settings}
    if not s["model"]:
        raise UserError("--model is required, e.g. --model gpt2 (or a checkpoint dir)")
    evaluate_only = bool(s["evaluation_only"]) or s["max_steps"] == 0
    data = None
    if s["dataset"] or s["datasets"] or not evaluate_only:  # training without data fails here, with the fix
        data = MixtureSpec.from_flags(s["dataset"], s["dataset_config"], s["datasets"], s["dataset_configs"],
                                      s["mixture_rates"])
    train = None
    if not evaluate_only:
        lora = (LoraSpec(s["lora_r"], s["lora_alpha"], s["lora_dropout"], s["lora_target_modules"], s["merge_lora"])
                if s["lora"] else None)
        train = TrainConfig(
            model=s["model"], data=data, mode=s["mode"], max_steps=s["max_steps"], output_dir=s["output_dir"],
            batch_size=s["batch_size"], gradient_accumulation_steps=s["gradient_accumulation_steps"],
            max_length=s["max_length"], save_steps=s["save_steps"], save_total_limit=s["save_total_limit"],
            learning_rate=s["learning_rate"], warmup_steps=s["warmup_steps"], seed=s["seed"],
            data_fraction=s["data_fraction"], lora=lora, bf16=s["bf16"],
            gradient_checkpointing=s["gradient_checkpointing"], report_to=s["report_to"], resume=s["resume"],
            overwrite=s["overwrite"], data_dir=s["data_dir"], results_dir=s["results_dir"],
            trust_remote_code=s["trust_remote_code"]).validate()
    return Cycle(model=s["model"], data=data, train=train, tasks=s["tasks"], transfer=s["transfer"],
                 num_fewshot=s["num_fewshot"], limit=s["limit"], eval_batch_size=s["eval_batch_size"],
                 allow_code_execution=s["allow_code_execution"], data_dir=s["data_dir"],
                 results_dir=s["results_dir"], trust_remote_code=s["trust_remote_code"],
                 bootstrap_iters=s["bootstrap_iters"], command=command, tags=dict(tags or {}))


def command_line(settings: dict, program: tuple[str, ...] = ("dlm", "run")) -> list[str]:
    """The argv that reproduces `settings` (flags left at their defaults are omitted)."""
    argv = list(program)
    s = {**DEFAULTS, **settings}
    evaluate_only = bool(s["evaluation_only"]) or s["max_steps"] == 0
    for flag in FLAGS:
        value = s[flag.name]
        if value is None or value == flag.default or (evaluate_only and flag.name not in EVAL_FLAGS):
            continue
        if flag.kind is bool:
            argv.append(f"--{flag.name}")
        elif flag.many:
            argv += [f"--{flag.name}", *("None" if v is None else _plain(v) for v in value)]
        else:
            argv += [f"--{flag.name}", _plain(value)]
    return argv


def _plain(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; keep dlm's one-line form instead
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", allow_abbrev=False, argument_default=argparse.SUPPRESS,
                     description="Train then evaluate (same as `dlm run`), with the study plan's flags.")
    for flag in FLAGS:
        names = [f"--{flag.name}"] + ([f"--{flag.name.replace('_', '-')}"] if "_" in flag.name else [])
        default = "" if flag.default is None else f" (default {flag.default})"
        if flag.kind is bool:
            parser.add_argument(*names, dest=flag.name, action="store_true", help=flag.help)
        else:
            parser.add_argument(*names, dest=flag.name, type=flag.kind, nargs="+" if flag.many else None,
                                metavar=flag.name.upper(), help=flag.help + default)
    return parser


def parse(argv: list[str]):
    """argv (without the program name) -> pipeline.Cycle; UserError on any mistake."""
    settings = vars(build_parser().parse_args(argv))
    return cycle_from_settings(settings, command=["python", "main.py", *argv])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cycle = parse(argv)
        from pipeline import run_cycle
        from results.console import print_eval

        print_eval(run_cycle(cycle))
    except UserError as err:
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(2)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; checkpoints saved so far are kept (re-run with --resume to continue)\n")
        raise SystemExit(130)


if __name__ == "__main__":
    main()
