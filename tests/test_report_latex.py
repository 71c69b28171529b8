"""`dlm report --format latex`: booktabs tables (headline per domain, approach x domain with intervals, verdicts
with their corrected p or q where carried), one rounding rule, a numbered mark on every non-like-for-like cell,
the tiny-model warning in every caption, every special character escaped; environments and braces balance; it
compiles with pdflatex where one is installed; --output is written atomically and never through a link.

Records are constructed (tests/test_report.py helpers), so the parsing tests take a second."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from test_report import record, score, write_all

from dlm.errors import UserError
from dlm.results.latex import escape, latex_view, to_latex
from dlm.results.matrix import TINY_NOTE
from dlm.results.report import build_report, render_report

EVIL_DATA = "my_data&50%"  # becomes part of a run label
EVIL_RUN = "e_%&#$~^{x}\\y<z>|"  # a run id (a file name) with every special


def trained(run_id, approach, scores, dataset="x", model="gpt2", created="2025-01-02"):
    rec = record(run_id, approach, scores, model=model, domain="finance", created=created)
    rec["train"]["config"]["data"] = {"parts": [{"dataset": dataset}]}
    return rec


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs = [
        record(
            "a-zs",
            "zero-shot",
            [
                score("dlm_fpb", 0.40, stderr=0.03),
                score("dlm_gsm8k", 0.02, "exact_match", shots=5, filt="strict-match"),
            ],
        ),
        trained(
            "b-pre",
            "pretrain",
            [
                score("dlm_fpb", 0.70),
                score("dlm_fpb_gen", 0.66),  # like-for-like with GPT-4's FinBen number: decides the headline
                score("dlm_mmlu", 0.30, "acc", shots=5, group=True),
            ],
        ),
        trained("c-sft", "sft", [score("dlm_fpb", 0.60)], dataset=EVIL_DATA, created="2025-01-03"),
        trained(EVIL_RUN, "sft", [score("dlm_fpb", 0.20, stderr=None)], model="tiny-gpt2", created="2025-01-04"),
    ]
    return build_report(write_all(tmp_path_factory.mktemp("latex") / "runs", runs))


@pytest.fixture(scope="module")
def tex(report):
    return to_latex(report)


def check_balanced(text: str) -> None:
    """Every \\begin{X} closed by its \\end{X} in order, and braces balanced outside the escaped \\{ and \\}."""
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", text):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} closes nothing open"
    assert not stack, f"unclosed: {stack}"
    depth = 0
    for char in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0


def unescaped_specials(line: str) -> str:
    """What is left of `line` once LaTeX commands, escapes and math are taken out: no special may remain."""
    line = line.replace("\\\\", "")  # the end of a table row
    line = re.sub(r"\\[&%$#_{}]", "", line)  # escaped specials
    line = re.sub(r"\$[^$]*\$", "", line)  # math: our marks and symbols
    line = re.sub(r"\\[A-Za-z]+(\{[^{}]*\})*", "", line)  # \textbf{...}, \textbackslash{}, \\ ...
    return "".join(c for c in line if c in "%#$_^~\\")


def test_output_is_balanced_with_every_special_escaped(report, tex):
    check_balanced(tex)
    assert tex.count(r"\begin{tabular}") == 4 and tex.count(r"\toprule") == 4
    body = tex.split(r"\begin{document}", 1)[1]
    for line in body.splitlines():
        assert unescaped_specials(line) == "", line
    # names from the records, specials and all: a run id and a label made from the training data
    assert escape(EVIL_RUN) in tex and EVIL_RUN not in tex
    label = next(r["label"] for r in report["runs"] if r["run_id"] == "c-sft")
    assert "my_data&50%" in label and escape(label) in tex
    # a row of a tabular has as many cells as the tabular has columns
    for columns, rows in re.findall(r"\\begin\{tabular\}\{(.*?)\}\n(.*?)\\end\{tabular\}", tex, flags=re.S):
        width = len(re.sub(r"\{[^}]*\}", "", columns))
        for row in rows.split("\\\\\n"):
            row = row.replace(r"\toprule", "").replace(r"\midrule", "").replace(r"\bottomrule", "").strip()
            if row and "multicolumn" not in row:
                assert len(re.findall(r"(?<!\\)&", row)) == width - 1, row


def test_escape_turns_every_special_into_its_command():
    assert escape("a_b%c&d#e$f{g}h~i^j\\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert escape("≠ ± → ⚠ 中") == r"$\neq$ $\pm$ $\rightarrow$ (!) ?"


def test_tables_carry_intervals_marks_and_the_tiny_warning(report, tex):
    view = latex_view(report)
    # matrix: every cell with a 95% interval, rounded to one decimal (percent)
    zero_shot = next(line for line in view["matrix"] if line["approach"] == "Zero-shot baseline")
    finance = zero_shot["cells"][0]
    assert finance["low"] < finance["mean"] < finance["high"] and finance["n"] == 1
    cells = re.findall(r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\] \((\d+)\)", tex)
    assert cells and all(len(x.split(".")[1]) == 1 for cell in cells for x in cell[:3])
    # the zero-shot FPB number is log-likelihood against GPT-4's generative one: marked, and the note says why
    assert finance["differs"] and re.search(r"\$\^\{1\}\$ not like-for-like: .*theirs generative", tex)
    marked_rows = [r for r in report["rows"] if r["primary"] and r["ratio"] is not None and r["protocol_differs"]]
    assert marked_rows and tex.count("not like-for-like") >= 1
    # headline: the deciding (like-for-like) run, its per-task score with a 3-decimal interval
    finance_headline = view["headline"][0]
    assert finance_headline["domain"] == "Financial" and finance_headline["best"]
    assert re.search(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", tex)
    # our protocol beside our score, the large model's shots and the source of its number beside it
    assert re.search(r"dlm\\_fpb\\_gen \(f1\\_weighted, gen, 0-shot\) .* \(gpt-4, 0-shot\)\$\^\{s1\}\$", tex)
    assert re.search(r"^\$\^\{s1\}\$ \S", tex, flags=re.M)
    # tiny-gpt2 in the report: every caption says what such runs are worth
    captions = re.findall(r"\\caption\{(.*)\}", tex)
    assert len(captions) == 4 and all(escape(TINY_NOTE) in c for c in captions)


def test_verdicts_show_the_corrected_p_or_q_where_the_report_carries_it(report):
    hypotheses = [dict(h) for h in report["hypotheses"]]
    hypotheses[0]["correction"] = {"method": "holm", "value": 0.0004, "family": "H1-H3 (3 tests)"}
    hypotheses[1]["q_bh"], hypotheses[1]["family"] = 0.0321, "hypotheses"
    tex = to_latex({**report, "hypotheses": hypotheses})
    rows = {line.split(" & ")[1]: line for line in tex.splitlines() if line.startswith("hypothesis & ")}
    first, second = (rows[h["name"]] for h in hypotheses[:2])
    assert r"p (Holm) $<$0.001 & H1-H3 (3 tests)" in first
    assert "q (BH) 0.032 & hypotheses" in second
    named = {hypotheses[0]["name"], hypotheses[1]["name"]}
    assert all(line.endswith(r"-- & -- \\") for name, line in rows.items() if name not in named)


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="no LaTeX engine (apt-get install texlive-latex-recommended)")
def test_compiles_with_pdflatex(tex, tmp_path):
    (tmp_path / "report.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "report.pdf").stat().st_size > 1000


def test_output_file_is_written_atomically_never_through_a_link(report, tmp_path, capsys):
    runs_dir = report["runs_dir"]
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "tables.tex"
    target.symlink_to(victim)
    render_report(runs_dir, fmt="latex", output=str(target))
    assert victim.read_text() == "keep me" and not target.is_symlink()
    assert target.read_text().startswith("% dlm report --format latex")
    with pytest.raises(UserError, match=r"\.tex"):
        render_report(runs_dir, fmt="latex", output=str(tmp_path / "tables.txt"))
    printed = render_report(runs_dir, fmt="latex")  # no --output: printed
    assert printed in capsys.readouterr().out
