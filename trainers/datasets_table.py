"""Config lists of the study's datasets (the full table rows are added below them)."""
from __future__ import annotations

MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)

# The 56 modules of deepmind/math_dataset (one config each); `_composed` variants chain several skills.
DM_MATH_MODULES = tuple(sorted(
    [f"algebra__{m}" for m in ("linear_1d", "linear_1d_composed", "linear_2d", "linear_2d_composed",
                               "polynomial_roots", "polynomial_roots_composed", "sequence_next_term",
                               "sequence_nth_term")]
    + [f"arithmetic__{m}" for m in ("add_or_sub", "add_or_sub_in_base", "add_sub_multiple", "div", "mixed", "mul",
                                    "mul_div_multiple", "nearest_integer_root", "simplify_surd")]
    + ["calculus__differentiate", "calculus__differentiate_composed"]
    + [f"comparison__{m}{c}" for m in ("closest", "kth_biggest", "pair", "sort") for c in ("", "_composed")]
    + ["measurement__conversion", "measurement__time", "numbers__base_conversion"]
    + [f"numbers__{m}{c}" for m in ("div_remainder", "gcd", "is_factor", "is_prime", "lcm", "list_prime_factors",
                                    "place_value", "round_number") for c in ("", "_composed")]
    + [f"polynomials__{m}" for m in ("add", "coefficient_named", "collect", "compose", "evaluate",
                                     "evaluate_composed", "expand", "simplify_power")]
    + ["probability__swr_p_level_set", "probability__swr_p_sequence"]
))
