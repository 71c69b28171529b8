"""The training path swaps GPT-2's composite tanh-GELU for torch's fused kernel: same outputs, less memory kept
for the backward, checkpoints unchanged."""

from __future__ import annotations

import copy


def saved_for_backward_bytes(model, input_ids) -> int:
    import torch

    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=input_ids, labels=input_ids).loss.backward()
    return total


def test_fused_gelu_gives_the_same_outputs_and_keeps_less_for_backward(tiny_model_dir, tmp_path):
    import torch

    from dlm.trainers.models import fuse_activations, load_model

    model, _ = load_model(str(tiny_model_dir), for_training=True)
    model.eval()  # no dropout: the two forwards must be comparable
    fused = copy.deepcopy(model)
    assert fuse_activations(fused) == model.config.n_layer, "one activation per block"
    assert fuse_activations(fused) == 0, "idempotent"
    ids = torch.randint(0, model.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(fused(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    assert saved_for_backward_bytes(fused, ids) < 0.95 * saved_for_backward_bytes(model, ids)
    fused.save_pretrained(tmp_path)
    assert '"activation_function": "gelu_new"' in (tmp_path / "config.json").read_text(), "config untouched"


def test_both_trainers_train_the_fused_model(tiny_model_dir, tmp_path):
    import datasets
    from transformers.activations import NewGELUActivation

    from dlm.trainers.models import load_model
    from dlm.trainers.pretrain import build_pretrain_trainer
    from dlm.trainers.sft import build_sft_trainer

    args = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        disable_tqdm=True,
    )
    texts = datasets.Dataset.from_list([{"text": f"Shares of $X{i} rose {i}% on results"} for i in range(8)])
    pairs = datasets.Dataset.from_list(
        [{"prompt": f"Tweet: $X{i} up\nSentiment:", "completion": " bullish"} for i in range(8)]
    )
    for build, data in ((build_pretrain_trainer, texts), (build_sft_trainer, pairs)):
        model, tok = load_model(str(tiny_model_dir), for_training=True)
        assert any(isinstance(m, NewGELUActivation) for m in model.modules())
        result = build(model, tok, data, dict(args), 32)
        trainer = result[0] if isinstance(result, tuple) else result
        assert not any(isinstance(m, NewGELUActivation) for m in trainer.model.modules()), build.__name__
