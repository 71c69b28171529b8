"""Wall time of `dlm --help` and `dlm data list` as whole processes (targets: <= 0.3 s and <= 1 s).

    python bench/cli_startup.py              # 15 alternated rounds
    python bench/cli_startup.py --tiny       # 2 rounds

Each round runs, in turn: `python -c pass` (the interpreter's own start-up, the floor), `dlm --help`,
`dlm data list` (the console script installed with the package). Reported: medians; the ratio is median / target.
Also prints the modules that `dlm --help` imports that a CLI should not need (torch, transformers, datasets, ...).
"""

from __future__ import annotations

import subprocess
import sys

import benchlib as common

HEAVY = ("torch", "transformers", "datasets", "trl", "peft", "lm_eval", "pyarrow", "numpy", "pandas")


def heavy_imports(args: list[str]) -> list[str]:
    """Heavy top-level packages the command imports (python -X importtime, read from stderr)."""
    code = (
        f"import sys; sys.argv = ['dlm'] + {args!r}; from dlm import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass"
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=str(common.ROOT)
    ).stderr
    found = set()
    for line in out.splitlines():
        if "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY:
                found.add(name.split(".")[0])
    return sorted(found)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=15)
    args = common.parse(p, argv)
    rounds = 2 if args.tiny else args.rounds
    dlm = common.dlm_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dlm --help": dlm + ["--help"],
        "dlm data list": dlm + ["data", "list"],
    }
    runs = common.alternate(
        {name: (lambda c=cmd, n=name: common.run_process(c).check(n).wall_s) for name, cmd in commands.items()}, rounds
    )
    for name, times in runs.items():
        print(f"{name:<16} median {common.median(times):.3f} s  (runs {common.spread(times)} s)")
    for name in ("dlm --help", "dlm data list"):
        extra = heavy_imports(commands[name][len(dlm) :])
        print(f"{name}: heavy imports: {', '.join(extra) or 'none'}")
    results = [
        common.result_line(
            "cli_help_s", common.median(runs["dlm --help"]), 0.3, True, "dlm --help, median wall seconds"
        ),
        common.result_line(
            "cli_data_list_s", common.median(runs["dlm data list"]), 1.0, True, "dlm data list, median wall seconds"
        ),
    ]
    payload = {"bench": "cli_startup", "args": vars(args), "runs": runs, "results": results}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
