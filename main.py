"""The study plan's own command line: `python main.py FLAGS` is `dlm run FLAGS`.

    python main.py --model gpt2 --dataset zeroshot/twitter-financial-news-sentiment --mode sft --max_steps 1000
    python main.py --model gpt2 --datasets gbharti/finance-alpaca LLukas22/fiqa --dataset_configs None None \
        --mixture_rates 0.7 0.3 --mode pretrain --max_steps 2000
    python main.py --model gpt2 --dataset takala/financial_phrasebank --mode sft --max_steps 0 --evaluation_only

The arguments go to the parser of `dlm run` (dlm/cli.py, generated from the config dataclasses), so every flag
is spelled as in the plan (underscores) or with dashes (`--max-steps`). A script run from the repository root,
not installed.
"""

from __future__ import annotations

import sys

from dlm import cli


def main(argv: list[str] | None = None) -> None:
    cli.main(
        ["run", *(sys.argv[1:] if argv is None else argv)], program=("python", "main.py"), own_process=argv is None
    )


if __name__ == "__main__":
    main()
