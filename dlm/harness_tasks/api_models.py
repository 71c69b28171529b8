"""Large models behind an API, scored on dlm's own generative tasks through lm-eval's own API model classes.

    dlm eval --model openai:gpt-4o-2024-08-06 --tasks fin_sentiment_gen
    dlm eval --model anthropic:claude-3-5-sonnet-20240620 --tasks fin_sentiment_gen --num_fewshot 5
    dlm eval --model openai-compatible:NAME --base-url http://127.0.0.1:8000/v1 --tasks fin_sentiment_gen

`ApiSpec` says which provider, model, URL and key variable; `api_lm` builds lm-eval's class for the provider
(openai-chat-completions, anthropic-chat, local-chat-completions) with `generate_until` replaced by dlm's:
the payload lm-eval builds is checked and corrected (temperature and the task's stop sequences: lm-eval's OpenAI
class forces temperature 1 and drops `stop` for any model name containing "5"), every request is looked up in
and written to dlm's response cache (api_cache.py), the cost is estimated before anything is sent
(api_budget.py), and requests are sent N at a time with backoff (api_client.py). Keys are read from the
environment when a request is sent, and never written anywhere.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from lm_eval.api.registry import get_model

from dlm.config import API_PROVIDERS
from dlm.errors import UserError
from dlm.harness_tasks import api_budget
from dlm.harness_tasks.api_budget import cost_of
from dlm.harness_tasks.api_cache import ResponseCache, default_path, request_key
from dlm.harness_tasks.api_client import Job, Sender, answer_problem
from dlm.harness_tasks.catalog import catalog, twin_for
from dlm.secrets import URL_PASSWORD, treat_as_secret, url_secrets
from dlm.trainers.chat import ChatTemplate

PROVIDERS = {
    # provider: (lm-eval model class name, default chat URL, key variable)
    "openai": ("openai-chat-completions", "https://api.openai.com/v1/chat/completions", "OPENAI_API_KEY"),
    "anthropic": ("anthropic-chat", "https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY"),
    "openai-compatible": ("local-chat-completions", None, None),
}
assert tuple(PROVIDERS) == API_PROVIDERS


class DryRun(Exception):
    """Raised once the estimate is printed under --dry-run: nothing was sent."""

    def __init__(self, estimate: dict):
        super().__init__("dry run")
        self.estimate = estimate


class ApiIncomplete(UserError):
    """Some requests failed after every retry: the run is incomplete (never scored), its answers are cached."""


@dataclass(frozen=True)
class ApiSpec:
    provider: str
    name: str
    url: str
    key_env: str | None

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def public_url(self) -> str:
        """The URL without the password of http://user:PASSWORD@host (what records, caches and messages hold)."""
        return URL_PASSWORD.sub(r"\1:***@", self.url)

    def to_dict(self) -> dict:  # the URL is recorded (no password); the key variable's name too, never its value
        return {"provider": self.provider, "model": self.name, "url": self.public_url, "key_env": self.key_env}


def parse(model: str, base_url: str | None = None, api_key_env: str | None = None) -> ApiSpec:
    provider, _, name = str(model).partition(":")
    if provider not in PROVIDERS or not name.strip():
        raise UserError(
            f"'{model}' is not an API model; use openai:MODEL, anthropic:MODEL or "
            "openai-compatible:MODEL --base-url URL"
        )
    _, default_url, key_env = PROVIDERS[provider]
    url = base_url or default_url
    if url is None:
        raise UserError(
            f"{model} needs --base-url, the server's OpenAI-compatible root (e.g. http://127.0.0.1:8000/v1)"
        )
    check_base_url(url)
    url_secrets(url)  # its password (and the Basic credential requests makes of it) is scrubbed from now on
    if provider != "anthropic" and not url.rstrip("/").endswith("/chat/completions"):
        url = url.rstrip("/") + "/chat/completions"
    treat_as_secret(api_key_env or key_env)  # its value is scrubbed like any *_KEY, whatever its name
    return ApiSpec(provider, name.strip(), url, api_key_env or key_env)


def check_base_url(url: str) -> None:
    """http(s)://host[:port][/path] or nothing: file://, a bare host, a bad port or a space are refused here, not
    by the HTTP library in the middle of a run."""
    shown = URL_PASSWORD.sub(r"\1:***@", url)
    hint = "give the server's http(s) root, e.g. --base-url http://127.0.0.1:8000/v1"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number in 0-65535)
    except ValueError:
        raise UserError(f"--base-url '{shown}' is not a valid URL; {hint}") from None
    if parts.scheme not in ("http", "https"):
        raise UserError(f"--base-url '{shown}': only http and https servers are supported; {hint}")
    if not parts.hostname or any(c.isspace() or ord(c) < 32 for c in url):
        raise UserError(f"--base-url '{shown}' names no host (or holds a space); {hint}")


def check_key(spec: ApiSpec, needed: bool = True) -> None:
    """The client libraries are installed and the key is in the environment, before anything is loaded or sent
    (its value is never printed)."""
    try:
        import aiohttp  # noqa: F401  (lm-eval's API classes import these)
        import requests  # noqa: F401
        import tenacity  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"API models need the client libraries ({err.name} is missing): pip install 'dlm[api]'"
        ) from None
    if needed and spec.key_env and not os.environ.get(spec.key_env):
        raise UserError(
            f"{spec.label} needs an API key in ${spec.key_env}; export it (or name another variable "
            "with --api-key-env NAME)"
        )


def check_generative(tasks: dict) -> None:
    """Chat APIs return no option log-likelihoods: a multiple-choice task is refused with its twin's name."""

    for name, task in tasks.items():
        if task.OUTPUT_TYPE != "generate_until":
            twin = twin_for(name)
            hint = f"ask for its generative twin {twin}" if twin else "choose a generative task (dlm tasks list)"
            raise UserError(
                f"{name} is scored by option log-likelihoods, which chat APIs do not return; {hint} "
                "(groups: fin_sentiment_gen, dlm_finance_gen, dlm_general_gen, dlm_math_gen)"
            )


def guarded(payload: dict, gen_kwargs: dict, provider: str) -> dict:
    """The payload as the task asks for it, whatever lm-eval's class did: the task's temperature (0 for every dlm
    task) and its stop sequences (Anthropic refuses whitespace-only ones; they are left to max tokens there)."""
    payload = dict(payload)
    payload["temperature"] = float(gen_kwargs.get("temperature", 0.0) or 0.0)
    until = [s for s in (gen_kwargs.get("until") or []) if isinstance(s, str) and s]
    if provider == "anthropic":
        stops = [s for s in until if s.strip()]
        payload.pop("stop_sequences", None)
        if stops:
            payload["stop_sequences"] = stops
    else:
        payload.pop("stop", None)
        if until:
            payload["stop"] = until[:4]  # OpenAI's limit
    return payload


def cut_at_stops(text: str, until: list[str]) -> str:
    """Servers apply `stop` themselves; cutting here too keeps a server that ignores it from changing scores."""
    for stop in until or []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


def api_lm(spec: ApiSpec, cfg, cache):
    """lm-eval's class for the provider, with dlm's generate_until (see the module docstring)."""
    base = get_model(PROVIDERS[spec.provider][0])

    # class here: its base is lm-eval's class for this provider, known only once --model is read
    class DlmApiModel(base):
        @property
        def api_key(self):  # read when a request is built, never stored on disk
            return os.environ.get(spec.key_env, "") if spec.key_env else ""

        def generate_until(self, requests, disable_tqdm: bool = False):
            return _generate(self, spec, cfg, cache, requests, Sender)

    kwargs = dict(model=spec.name, base_url=spec.url, num_concurrent=1, max_retries=1, timeout=120)
    return DlmApiModel(**kwargs)


def _task_version(name: str | None) -> str | None:

    info = catalog().get(name or "")
    return info.version if info else None


def _generate(lm, spec: ApiSpec, cfg, cache, requests, sender_class) -> list[str]:

    jobs, untils = [], []
    for request in requests:
        context, gen_kwargs = request.args[0], request.args[1]
        payload = lm._create_payload(
            lm.create_message([context]),
            generate=True,
            gen_kwargs=copy.deepcopy(gen_kwargs),
            seed=lm._seed,
            eos=lm.eos_string,
        )
        payload = guarded(payload, gen_kwargs, spec.provider)
        key = request_key(
            spec.provider, spec.public_url, spec.name, request.task_name, _task_version(request.task_name), payload
        )
        cached = cache.get(key)  # a malformed answer cached by an older dlm counts as not answered
        jobs.append(Job(key=key, payload=payload, response=None if answer_problem(cached, spec.provider) else cached))
        untils.append(list(gen_kwargs.get("until") or []))
    to_send = [job for job in jobs if job.response is None]
    estimate = api_budget.estimate([job.payload for job in to_send], spec.provider, spec.name)
    sys.stdout.write(f"[dlm eval] {spec.label}: {api_budget.describe(estimate, len(jobs) - len(to_send))}\n")
    sys.stdout.flush()
    lm.dlm_estimate = estimate
    if cfg.max_cost is not None and to_send:
        if estimate["cost_usd"] is None:
            raise UserError(
                f"--max-cost {cfg.max_cost:g}: {spec.name} has no price in harness_tasks/api_prices.yml, "
                "so the cost cannot be checked; add its prices there or drop --max-cost"
            )
        if estimate["cost_usd"] > cfg.max_cost:
            raise UserError(
                f"estimated cost ${estimate['cost_usd']:.2f} is above --max-cost {cfg.max_cost:g}; "
                "nothing was sent (use --limit, fewer tasks, or raise --max-cost)"
            )
    if cfg.dry_run:
        raise DryRun(estimate)
    sender = sender_class(
        spec.url, dict(lm.header), cache, concurrency=cfg.concurrency, max_wait_s=cfg.max_wait, provider=spec.provider
    )
    lm.dlm_sender = sender
    sender.run(jobs)
    failed = [job for job in jobs if job.response is None]
    if failed:
        raise ApiIncomplete(
            f"{len(failed)} of {len(jobs)} API requests failed after retries (last: "
            f"{failed[-1].error}); the {len(jobs) - len(failed)} answers are cached: run the same "
            "command again to send only the rest"
        )
    texts = []
    for job, until in zip(jobs, untils):
        generated = lm.parse_generations(outputs=job.response)
        texts.append(cut_at_stops(generated[0] if generated and generated[0] is not None else "", until))
    return texts


def run_api(spec: ApiSpec, cfg, top_level: list, task_manager, run_harness) -> dict:
    """Evaluate through the API with `run_harness` (harness_tasks/evaluate.py's, handed down so this module does
    not import its caller): {"results", "template", "model_info", "api"}, or {"dry_run": True, "estimate"}.
    An ApiIncomplete (requests that failed after retries) propagates: nothing is scored."""

    cache = ResponseCache(None if cfg.no_cache else default_path())
    lm = api_lm(spec, cfg, cache)
    try:
        results = run_harness(None, None, top_level, task_manager, cfg, log_samples=True, chat=True, lm=lm)
    except DryRun as done:
        return {"dry_run": True, "estimate": done.estimate}
    except ApiIncomplete as err:
        err.api = {**spec.to_dict(), **lm.dlm_sender.stats.to_dict()}
        raise
    finally:
        cache.close()

    stats = lm.dlm_sender.stats.to_dict()
    api = {
        **spec.to_dict(),
        **stats,
        "cost_usd": cost_of(stats["tokens_in"], stats["tokens_out"], spec.name),
        "estimate": lm.dlm_estimate,
        "cache": None if cfg.no_cache else "dlm API response cache",
    }
    model_info = {
        "name": cfg.model,
        "resolved": spec.public_url,
        "revision": ", ".join(stats["models_returned"]) or None,
        "peft": None,
        "base_model": None,
        "api": spec.to_dict(),
    }
    # the prompt is sent as chat messages; the provider's own template renders them, unseen and unhashed
    template = ChatTemplate(name=f"{spec.provider} server's own", text="", sha256=None)
    return {"results": results, "template": template, "model_info": model_info, "api": api}
