"""`--chat-template`: which chat template a run applies, resolved once, and recorded by name and hash.

The flag takes `default` (the tokenizer's own template), the name of one of the tokenizer's named templates, or a
Jinja file. Whatever it names is resolved to the template *text* and set on the tokenizer for the run
(`applied_to`): lm-eval's HFLM renders prompts with `tokenizer.apply_chat_template` and never passes a named
template on, so setting the text is the one way every choice reaches both evaluation and SFT the same way.
A model without a template asked for one is a UserError naming the fix, raised before any work starts.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from dlm.errors import UserError
from dlm.trainers.models import (
    _has_tokenizer,
    adapter_base,
    is_adapter_dir,
    resolve_model,
)
from dlm.trainers.models import load_tokenizer as checked_tokenizer

DEFAULT = "default"


@dataclass(frozen=True)
class ChatTemplate:
    name: str  # "default", a named template, or the file name
    text: str
    sha256: str

    def to_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}


def text_hash(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def _templates(tokenizer) -> dict[str, str]:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return dict(template)
    return {DEFAULT: template} if template else {}


def resolve(tokenizer, spec: str | None, model: str, system_instruction: str | None = None) -> ChatTemplate | None:
    """The template `spec` names for this tokenizer, checked by rendering the conversations dlm sends; None when no
    template was asked for."""
    template = _named(tokenizer, spec, model)
    if template is not None:
        check_renders(tokenizer, template, system_instruction)
    return template


def _named(tokenizer, spec: str | None, model: str) -> ChatTemplate | None:
    if not spec:
        return None
    spec = str(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UserError(
                f"--chat-template file '{spec}' is not UTF-8 text (byte {err.start}); save it as UTF-8"
            ) from None
        if not text.strip():
            raise UserError(f"--chat-template file '{spec}' is empty; give a Jinja chat template")
        return ChatTemplate(path.name, text, text_hash(text))
    if "/" in spec or spec.endswith((".jinja", ".j2", ".txt")):
        raise UserError(
            f"--chat-template file '{spec}' not found; give an existing Jinja file, `default` for the "
            "tokenizer's own template, or leave the flag out"
        )
    templates = _templates(tokenizer)
    if not templates:
        raise UserError(
            f"model '{model}' has no chat template; pass --chat-template FILE.jinja with one, or leave "
            "--chat-template out (base models are scored without one)"
        )
    if spec not in templates:
        raise UserError(
            f"model '{model}' has no chat template named '{spec}' (it has: {', '.join(sorted(templates))}); "
            f"use --chat-template {DEFAULT}, one of those names, or a Jinja file"
        )
    return ChatTemplate(spec, templates[spec], text_hash(templates[spec]))


def check_renders(tokenizer, template: ChatTemplate, system_instruction: str | None = None) -> None:
    """A template is code from a file: it renders the two conversations dlm sends (a prompt with its generation
    prompt; a prompt and an answer, for SFT) now, or is refused with its error, instead of failing mid-run."""
    messages = chat_messages("Is this a question?", system_instruction)
    try:
        tokenizer.apply_chat_template(messages, chat_template=template.text, tokenize=False, add_generation_prompt=True)
        answered = [*messages, {"role": "assistant", "content": "Yes."}]
        tokenizer.apply_chat_template(answered, chat_template=template.text, tokenize=False)
    except jinja2.TemplateSyntaxError as err:
        raise UserError(
            f"chat template '{template.name}' has a syntax error at line {err.lineno}: {err.message}; fix the "
            "template or pass another --chat-template"
        ) from None
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
        # the template's own raise_exception(...) or a mistake in its code: either way it cannot render
        reason = (str(err).splitlines() or [""])[0][:160]
        raise UserError(
            f"chat template '{template.name}' fails on a plain conversation"
            + (" with a system message" if system_instruction else "")
            + f" ({type(err).__name__}: {reason}); fix the template or pass another --chat-template"
        ) from None


def check(
    model: str,
    spec: str | None,
    peft: str | None = None,
    trust_remote_code: bool = False,
    system_instruction: str | None = None,
) -> None:
    """Resolve `spec` against the model's tokenizer alone (no weights loaded): the pre-flight check."""
    if not spec:
        return
    resolve(load_tokenizer(model, peft, trust_remote_code), spec, model, system_instruction)


def load_tokenizer(model: str, peft: str | None = None, trust_remote_code: bool = False):

    resolved = resolve_model(model)
    if peft and _has_tokenizer(peft):
        source = peft
    elif Path(resolved).is_dir() and is_adapter_dir(resolved) and not _has_tokenizer(resolved):
        source = resolve_model(adapter_base(resolved))
    else:
        source = resolved
    return checked_tokenizer(source, model, trust_remote_code)


@contextlib.contextmanager
def applied_to(tokenizer, template: ChatTemplate | None):
    """The tokenizer renders `template` inside the block; its own template is back afterwards."""
    if template is None:
        yield tokenizer
        return
    before = tokenizer.chat_template
    tokenizer.chat_template = template.text
    try:
        yield tokenizer
    finally:
        tokenizer.chat_template = before


def keep_for_training(
    tokenizer, spec: str | None, model: str, model_info: dict, system_instruction: str | None = None
) -> ChatTemplate | None:
    """The template a training run renders its SFT prompts in, set on the tokenizer for good: the checkpoint
    carries the template it was trained in (and model_info records which)."""
    template = resolve(tokenizer, spec, model, system_instruction)
    if template is not None:
        tokenizer.chat_template = template.text
        model_info["chat_template"] = template.to_dict()
    return template


def chat_messages(prompt: str, system_instruction: str | None = None) -> list[dict]:
    """A one-turn conversation as lm-eval builds it for a zero-shot prompt: system (if any), then the user."""
    messages = [{"role": "system", "content": system_instruction}] if system_instruction else []
    return messages + [{"role": "user", "content": prompt}]


def chat_pair(tokenizer, prompt: str, completion: str, system_instruction: str | None = None) -> tuple[str, str]:
    """(prompt, completion) of one SFT example rendered in the tokenizer's chat template: the prompt is exactly what
    lm-eval sends with --apply_chat_template (system, user, generation prompt), the completion is the assistant's
    answer and the template's end of turn."""
    messages = chat_messages(prompt, system_instruction)
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    answer = [{"role": "assistant", "content": completion.strip()}]
    whole = tokenizer.apply_chat_template(messages + answer, tokenize=False)
    if not whole.startswith(head):
        raise UserError(
            "this chat template renders a conversation that does not start with its own generation "
            "prompt, so prompt and answer cannot be separated for SFT; use another --chat-template"
        )
    return head, whole[len(head) :]


def as_chat_pairs(dataset, tokenizer, system_instruction: str | None = None):
    """An SFT dataset of prompt/completion strings, each pair rendered in the chat template (`chat_pair`)."""

    def render(row: dict) -> dict:
        prompt, completion = chat_pair(tokenizer, row["prompt"], row["completion"], system_instruction)
        return {"prompt": prompt, "completion": completion}

    return dataset.map(render)
