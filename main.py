"""The study plan's own command line, mapped onto the same cycle as `dlm run`:

    python main.py --model gpt2 --dataset zeroshot/twitter-financial-news-sentiment --mode sft --max_steps 1000
    python main.py --model gpt2 --datasets gbharti/finance-alpaca LLukas22/fiqa --dataset_configs None None \
        --mixture_rates 0.7 0.3 --mode pretrain --max_steps 2000
    python main.py --model gpt2 --dataset takala/financial_phrasebank --mode sft --max_steps 0 --evaluation_only

Every flag is spelled as in the plan (underscores); dashes work too (`--max-steps`). The flags are the rows of
study/settings.py that `dlm run` takes. Mistakes print "error: ..." and exit with code 2, like `dlm`.
This file is run from the repository root; it is not installed.
"""
from __future__ import annotations

import argparse
import sys

from dlm_data.errors import UserError
from study import settings as table


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; keep dlm's one-line form instead
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", allow_abbrev=False, argument_default=argparse.SUPPRESS,
                     description="Train then evaluate (same as `dlm run`), with the study plan's flags.")
    for setting in table.RUN_SETTINGS:
        default = "" if setting.default is None else f" (default {setting.default})"
        if setting.kind is bool:
            parser.add_argument(*setting.spellings(), dest=setting.name, action="store_true", help=setting.help)
        else:
            parser.add_argument(*setting.spellings(), dest=setting.name, type=setting.kind,
                                nargs="+" if setting.many else None, metavar=setting.name.upper(),
                                help=setting.help + default)
    parser.add_argument("--verbose", action="store_true", help="show the libraries' progress bars, warnings and log "
                        "lines (also DLM_VERBOSE=1)")  # not a run setting: main() reads it
    return parser


def parse(argv: list[str]):
    """argv (without the program name) -> study.cycle.Cycle; UserError on any mistake."""
    settings = vars(build_parser().parse_args(argv))
    settings.pop("verbose", None)
    return table.cycle_from_settings(settings, command=["python", "main.py", *argv])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--verbose" in argv:
        from dlm_data.quiet import set_verbose

        set_verbose(True)
    try:
        cycle = parse(argv)
        from results.console import print_eval
        from study.cycle import run_cycle

        print_eval(run_cycle(cycle))
    except UserError as err:
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(2)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; checkpoints saved so far are kept (re-run with --resume to continue)\n")
        raise SystemExit(130)


if __name__ == "__main__":
    main()
