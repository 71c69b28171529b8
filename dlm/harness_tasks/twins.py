"""Generative twins: a multiple-choice task asked to *answer in words*, the way large chat models are scored.

A twin is a YAML file that includes its sibling and `_generative_twin_yaml`:

    include: [fpb.yaml, ../_generative_twin_yaml]
    task: dlm_fpb_gen

so prompt, data, splits, shots, choices and metrics are the sibling's. The template switches the task to
`generate_until` (greedy, short, stops at a blank line) and names `GenerativeTwin` as its class: that class reads
the label out of the text (harness_tasks/extraction.py), hands the sibling's own `process_results` the
extracted choice index in place of log-likelihoods (-1 when no label was found: wrong, and counted in `missing`),
and adds the `missing` metric. It needs the sibling's `doc_to_choice` and `doc_to_target`, which lm-eval's
`process_results(doc, results)` hook never sees: that is why the twin is a class and not a function.
"""

from __future__ import annotations

from lm_eval.api.task import ConfigurableTask

from dlm.harness_tasks.extraction import extract_label

MISSING_METRIC = {"metric": "missing", "aggregation": "mean", "higher_is_better": False}


class GenerativeTwin(ConfigurableTask):
    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        config.pop("class", None)  # lm-eval's route marker, not a TaskConfig field
        metrics = [m for m in config.get("metric_list") or [] if m.get("metric") != "missing"]
        config["metric_list"] = [*metrics, dict(MISSING_METRIC)]
        self._sibling_results = config.get("process_results")
        # any process_results tells lm-eval the metrics are computed here; without one it looks every metric name
        # up in its registry and then in HF `evaluate` ("missing" is in neither: a 1.5 s network timeout per task)
        config["process_results"] = _scored_by_the_twin
        super().__init__(config=config)

    def process_results(self, doc, results):
        choices = self.doc_to_choice(doc)
        found = extract_label(results[0], choices)
        predicted = -1 if found is None else found
        if callable(self._sibling_results):  # the sibling's scoring, fed the extracted choice
            scores = dict(self._sibling_results(doc, predicted))
        else:  # siblings scored by lm-eval's built-in acc (MMLU, MMLU-Pro)
            scores = {"acc": float(predicted == int(self.doc_to_target(doc)))}
        scores["missing"] = float(found is None)
        return scores


def _scored_by_the_twin(doc, results):  # never called: GenerativeTwin.process_results replaces the hook
    raise AssertionError("GenerativeTwin.process_results scores twin documents")
