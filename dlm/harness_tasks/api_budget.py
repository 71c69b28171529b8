"""What an API run will cost, counted before anything is sent: requests, prompt tokens, and dollars at the dated
list prices of harness_tasks/api_prices.yml.

Prompt tokens: tiktoken's encoding for OpenAI models (when tiktoken is installed), otherwise an estimate of one
token per 4 characters, said so in the output; +4 tokens per message for the chat framing. Output tokens are
bounded by each request's max tokens: the estimate is an upper bound on output cost.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

PRICES_FILE = Path(__file__).with_name("api_prices.yml")
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


@lru_cache(maxsize=1)
def prices() -> dict:

    return yaml.safe_load(PRICES_FILE.read_text(encoding="utf-8"))


def price_of(model: str) -> dict | None:
    return (prices().get("models") or {}).get(model)


def _counter(provider: str, model: str):
    """(text -> tokens, how it was counted)."""
    why = "no tokenizer for this provider"
    if provider == "openai":
        try:
            import tiktoken

            try:
                encoding = tiktoken.encoding_for_model(model)
            except KeyError:
                encoding = tiktoken.get_encoding("o200k_base")
            return (lambda text: len(encoding.encode(text))), f"tiktoken {encoding.name}"
        except ImportError:
            why = "tiktoken not installed"
        except (OSError, ValueError) as err:  # tiktoken downloads its encodings on first use (requests' errors are
            # OSErrors); offline, or with a corrupt cache, it cannot
            why = f"tiktoken's encoding could not be loaded ({err.__class__.__name__})"
    return (lambda text: -(-len(text) // CHARS_PER_TOKEN)), f"estimate: {CHARS_PER_TOKEN} characters per token; {why}"


def _messages(payload: dict) -> list[str]:
    texts = [str(payload["system"])] if payload.get("system") else []
    for message in payload.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):  # Anthropic: [{"type": "text", "text": ...}]
            texts.append("".join(str(part.get("text", "")) for part in content))
        else:
            texts.append(str(content))
    return texts


def estimate(payloads: list[dict], provider: str, model: str) -> dict:
    count, method = _counter(provider, model)
    prompt = sum(count(text) + TOKENS_PER_MESSAGE for payload in payloads for text in _messages(payload))
    output = sum(int(p.get("max_completion_tokens") or p.get("max_tokens") or 0) for p in payloads)
    price = price_of(model)
    cost = None if price is None else (prompt * price["input"] + output * price["output"]) / 1e6
    return {
        "requests": len(payloads),
        "prompt_tokens": prompt,
        "max_output_tokens": output,
        "counted_by": method,
        "cost_usd": cost,
        "prices_as_of": prices().get("as_of") if price else None,
    }


def describe(e: dict, cached: int) -> str:
    cost = (
        f"~${e['cost_usd']:.2f} at the list prices of {e['prices_as_of']} (output at its maximum)"
        if e["cost_usd"] is not None
        else "cost unknown (model not in harness_tasks/api_prices.yml)"
    )
    return (
        f"{e['requests']} request(s) to send ({cached} already answered in the cache), {e['prompt_tokens']:,} "
        f"prompt tokens ({e['counted_by']}), at most {e['max_output_tokens']:,} output tokens; {cost}"
    )


def cost_of(tokens_in: int, tokens_out: int, model: str) -> float | None:
    price = price_of(model)
    return None if price is None else (tokens_in * price["input"] + tokens_out * price["output"]) / 1e6
