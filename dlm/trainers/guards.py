"""Training that fails loudly: a non-finite loss or weights stop the run with an error and a record marked failed,
never a checkpoint and a record that say "ok"; a run with nothing to train on is refused before it starts."""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from dlm.errors import UserError


class NonFiniteTraining(Exception):
    pass


class FiniteLoss(TrainerCallback):
    """Stops training at the first logged loss that is not finite."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if isinstance(loss, (int, float)) and not math.isfinite(loss):
            raise NonFiniteTraining(f"the training loss became {loss} at step {state.global_step}")


def finite_loss_callback() -> FiniteLoss:
    return FiniteLoss()


def check_finite_weights(model) -> None:

    for name, parameter in model.named_parameters():
        if parameter.requires_grad and not bool(torch.isfinite(parameter.detach()).all()):
            raise NonFiniteTraining(f"weight {name} is no longer finite after training")


def check_has_examples(dataset, max_length: int) -> None:
    """A finite dataset with no row left to train on (every example cut to nothing, or empty blocks)."""
    try:
        rows = len(dataset)
    except TypeError:  # streamed: rows are only known as they are read
        return
    if rows == 0:
        raise UserError(
            f"nothing to train on: no example keeps a token to learn within --max_length {max_length}; "
            "raise --max_length"
        )
