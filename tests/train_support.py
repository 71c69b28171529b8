"""Shared by the training tests: a TrainConfig on the tiny model and samples/, weight snapshots, stored records,
and one torch thread per test module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlm.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TWEETS = "zeroshot/twitter-financial-news-sentiment"


def config(tmp: Path, name: str, mode: str = "pretrain", **overrides) -> TrainConfig:
    """Data flags (dataset=..., or datasets=... with mixture_rates) and any TrainConfig field override the
    defaults: one pretraining run of 4 steps on the samples' tweets."""
    if "datasets" in overrides:
        overrides.setdefault("dataset", None)
    values = dict(
        model="tiny-gpt2",
        dataset=TWEETS,
        mode=mode,
        max_steps=4,
        output_dir=str(tmp / name),
        batch_size=4,
        gradient_accumulation_steps=1,
        max_length=64,
        save_steps=2,
        save_total_limit=2,
        logging_steps=1,
        results_dir=str(tmp / "runs"),
        seed=7,
    )
    values.update(overrides)
    return TrainConfig(**values).validate()


def weights(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def records(results_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny-model ops are too small to gain from a second thread, and on a shared 2-core machine busy-waiting
    OpenMP threads made steps several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_allclose(a, b) -> bool:
    import torch

    return torch.allclose(a, b, atol=1e-5, rtol=1e-4)
