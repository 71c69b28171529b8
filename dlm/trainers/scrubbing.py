"""Secrets out of the files that libraries write into an output dir: model cards and JSON (README.md names the
output dir, and with it any secret a path holds) and the pickled TrainingArguments, scrubbed like run records."""

from __future__ import annotations

from pathlib import Path

import torch

from dlm.secrets import scrub


def scrub_output_dir(output_dir: Path) -> None:
    """Model cards and configs that libraries write (README.md names the output dir, and with it any secret a
    path holds) get the same scrubbing as records."""

    for path in [
        *output_dir.glob("*.md"),
        *output_dir.glob("*.json"),
        *output_dir.glob("merged/*.md"),
        *output_dir.glob("checkpoint-*/*.md"),
        *output_dir.glob("checkpoint-*/*.json"),
    ]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        clean = scrub(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
    for path in [*output_dir.glob("training_args.bin"), *output_dir.glob("checkpoint-*/training_args.bin")]:
        _scrub_training_args(path)


def _scrub_training_args(path: Path) -> None:
    """training_args.bin is the pickled TrainingArguments (our own, just written): its strings are scrubbed too."""

    args = torch.load(path, weights_only=False)
    changed = False
    for key, value in vars(args).items():
        if isinstance(value, str) and scrub(value) != value:
            setattr(args, key, scrub(value))
            changed = True
    if changed:
        torch.save(args, path)
