"""Property tests of the loaders that read what others write (hypothesis): plan YAML, output-dir marks, lineage and
API answers. Random and mutated inputs give a clean refusal or a valid object, never another exception, and a
mark, whatever it says, can make --overwrite remove nothing outside its folder nor anything it does not own.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlm.errors import UserError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
NAMES = st.sampled_from(
    ["model.safetensors", "notes.txt", "checkpoint-2", "link", "../victim", "/etc/hostname", "..", ".", "", "a/b"]
)
PLAN_WORDS = st.sampled_from(
    [
        "runs:",
        "defaults:",
        "matrix:",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        ":",
        "model: tiny-gpt2",
        "\n",
        "  ",
        "!!python/object:os.system",
        "? ",
        "'",
        '"',
        "max_steps: 1",
        "seeds: [1, 2]",
    ]
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(PLAN_WORDS, max_size=40).map("".join) | st.text(max_size=200))
def test_plan_yaml_is_a_value_or_a_user_error(text):
    from dlm.plan.yaml_reader import read_yaml

    try:
        read_yaml(text, "plan.yaml")
    except UserError as err:
        assert str(err).startswith("plan.yaml") and "\n" not in str(err).strip()


@FAST
@given(st.lists(PLAN_WORDS, max_size=40).map("".join))
def test_a_whole_plan_file_loads_or_is_refused_with_one_line(text):
    from dlm.plan.file import Plan, load_plan

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.yaml"
        path.write_text(text)
        try:
            plan = load_plan(str(path))
        except UserError as err:
            assert "plan.yaml" in str(err) and "\n" not in str(err).strip(), str(err)  # names the file, one line
        else:
            assert isinstance(plan, Plan) and all(run.key for run in plan.runs)


def _mark_strategy():
    names = st.lists(NAMES | st.text(max_size=8) | st.integers() | st.none(), max_size=6)
    digests = st.dictionaries(NAMES, st.dictionaries(st.sampled_from(["sha256", "files"]), JSON, max_size=2))
    return (
        st.fixed_dictionaries(
            {},
            optional={
                "written": digests | JSON,
                "pending": names | JSON,
                "legacy": names,
                "entries": names | JSON,
                "run_key": JSON,
                "run": JSON,
            },
        )
        | JSON
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mark_strategy())
def test_no_mark_makes_overwrite_remove_anything_outside_or_unowned(mark):
    from dlm.trainers.checkpoints import OWNER_FILE, clear_output_dir, owned_entries

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        victim = root / "victim"
        victim.mkdir()
        (victim / "thesis.tex").write_text("mine")
        out = root / "out"
        out.mkdir()
        (out / "notes.txt").write_text("user")
        (out / "checkpoint-2").mkdir()
        (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
        (out / "link").symlink_to(victim)
        (out / OWNER_FILE).write_text(json.dumps(mark))
        try:
            owned = owned_entries(out)
        except UserError as err:  # a mark that is not one dlm wrote: refused, naming it, and nothing removed
            assert OWNER_FILE in str(err)
            with pytest.raises(UserError):
                clear_output_dir(out)
            assert (out / "notes.txt").exists() and (out / "checkpoint-2").is_dir()
            assert (victim / "thesis.tex").read_text() == "mine"
            return
        assert all(p.parent == out and not p.is_symlink() for p in owned)
        claimed = set()
        if isinstance(mark, dict):
            for key in ("written", "pending", "legacy", "entries"):
                value = mark.get(key)
                claimed |= {n for n in (value if isinstance(value, (list, dict)) else []) if isinstance(n, str)}
        assert {p.name for p in owned} <= claimed  # nothing the mark does not name
        clear_output_dir(out)
        assert (victim / "thesis.tex").read_text() == "mine" and os.path.islink(out / "link")
        assert (out / "notes.txt").exists() or "notes.txt" in claimed


@FAST
@given(JSON)
def test_resume_identity_from_any_lineage_is_a_value_or_a_user_error(lineage):
    from dlm.trainers.checkpoints import check_same_run

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "dlm_lineage.json").write_text(json.dumps(lineage))
        identity = {"model": "gpt2", "mode": "sft", "data": "x", "lora": False}
        for owner in (None, {"run": lineage}):
            try:
                check_same_run(Path(folder), owner, identity)
            except UserError as err:
                assert "--resume refused" in str(err)


@FAST
@given(JSON, st.sampled_from(["openai", "openai-compatible", "anthropic"]))
def test_an_api_answer_is_checked_without_error_and_a_good_one_parses(response, provider):
    from dlm.harness_tasks.api_client import answer_problem, usage_tokens

    problem = answer_problem(response, provider)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        tokens_in, tokens_out = usage_tokens(response)
        assert tokens_in >= 0 and tokens_out >= 0
        if provider != "anthropic":
            assert all(isinstance(c["message"]["content"], str) for c in response["choices"])
