"""Twelve small BigCodeBench-shaped tasks: structured docstring prompt, instruction, solution, unittest code.

`TASKS[i](i, version)` gives the row of task i in one dataset version; later versions add a test, as the real
versions fixed tests over time.
"""

from __future__ import annotations

import json

# (libs, signature args, description, returns, body lines, test asserts, example)
SPECS = [
    (
        ["statistics"],
        "numbers",
        "Calculate the mean of a list of numbers.",
        "float: The mean.",
        ["return statistics.mean(numbers)"],
        ["self.assertEqual(task_func([1, 2, 3]), 2)"],
        "task_func([1, 2, 3])\n    2",
    ),
    (
        ["collections"],
        "text",
        "Count how often each word occurs in a text.",
        "dict: word -> count.",
        ["return dict(collections.Counter(text.split()))"],
        ["self.assertEqual(task_func('a b a'), {'a': 2, 'b': 1})"],
        "task_func('a b a')\n    {'a': 2, 'b': 1}",
    ),
    (
        ["re"],
        "text",
        "Count the vowels in a string, ignoring case.",
        "int: The number of vowels.",
        ["return len(re.findall(r'[aeiou]', text.lower()))"],
        ["self.assertEqual(task_func('Hello'), 2)"],
        "task_func('Hello')\n    2",
    ),
    (
        ["math"],
        "n",
        "Return the factorials of 0..n-1 as a list.",
        "list: The factorials.",
        ["return [math.factorial(k) for k in range(n)]"],
        ["self.assertEqual(task_func(4), [1, 1, 2, 6])"],
        "task_func(3)\n    [1, 1, 2]",
    ),
    (
        ["operator"],
        "scores",
        "Sort a dict of scores by value, highest first.",
        "list: (name, score) tuples.",
        ["return sorted(scores.items(), key=operator.itemgetter(1), reverse=True)"],
        ["self.assertEqual(task_func({'a': 1, 'b': 3}), [('b', 3), ('a', 1)])"],
        "task_func({'a': 1, 'b': 3})\n    [('b', 3), ('a', 1)]",
    ),
    (
        ["json"],
        "payload",
        "Parse a JSON object string and return its keys sorted.",
        "list: The sorted keys.",
        ["return sorted(json.loads(payload))"],
        ["self.assertEqual(task_func('{\"b\": 1, \"a\": 2}'), ['a', 'b'])"],
        "task_func('{\"b\": 1}')\n    ['b']",
    ),
    (
        ["random"],
        "n, seed=0",
        "Draw n integers in [0, 100] with a fixed seed.",
        "list: n integers.",
        ["rng = random.Random(seed)", "return [rng.randint(0, 100) for _ in range(n)]"],
        ["self.assertEqual(len(task_func(5)), 5)", "self.assertEqual(task_func(3), task_func(3))"],
        "len(task_func(2))\n    2",
    ),
    (
        ["datetime"],
        "start, end",
        "Count the days between two ISO dates.",
        "int: The number of days.",
        ["fmt = datetime.date.fromisoformat", "return (fmt(end) - fmt(start)).days"],
        ["self.assertEqual(task_func('2024-01-01', '2024-01-31'), 30)"],
        "task_func('2024-01-01', '2024-01-02')\n    1",
    ),
    (
        ["itertools"],
        "nested",
        "Flatten a list of lists.",
        "list: The flat list.",
        ["return list(itertools.chain.from_iterable(nested))"],
        ["self.assertEqual(task_func([[1], [2, 3]]), [1, 2, 3])"],
        "task_func([[1], [2]])\n    [1, 2]",
    ),
    (
        ["string"],
        "text",
        "Check whether a text is a palindrome, ignoring punctuation and case.",
        "bool: True if so.",
        [
            "kept = [c.lower() for c in text if c not in string.punctuation and not c.isspace()]",
            "return kept == kept[::-1]",
        ],
        ["self.assertTrue(task_func('A man, a plan, a canal: Panama'))", "self.assertFalse(task_func('abc'))"],
        "task_func('Abba')\n    True",
    ),
    (
        ["hashlib"],
        "text",
        "Return the MD5 hex digest of a UTF-8 string.",
        "str: 32 hex characters.",
        ["return hashlib.md5(text.encode('utf-8')).hexdigest()"],
        ["self.assertEqual(len(task_func('x')), 32)"],
        "len(task_func('x'))\n    32",
    ),
    (
        ["itertools"],
        "numbers",
        "Return the sums of all unordered pairs of numbers.",
        "list: The pair sums.",
        ["return [a + b for a, b in itertools.combinations(numbers, 2)]"],
        ["self.assertEqual(task_func([1, 2, 3]), [3, 4, 5])"],
        "task_func([1, 2])\n    [3]",
    ),
]


def make_row(i: int, version: str) -> dict:
    libs, args, desc, returns, body, asserts, example = SPECS[i]
    imports = "\n".join(f"import {lib}" for lib in libs)
    signature = f"def task_func({args}):"
    complete = (
        f'{imports}\n\n{signature}\n    """\n    {desc}\n\n    Parameters:\n    - {args}: the input.\n\n'
        f"    Returns:\n    {returns}\n\n    Requirements:\n"
        + "".join(f"    - {lib}\n" for lib in libs)
        + f'\n    Example:\n    >>> {example}\n    """\n'
    )
    code_prompt = f"{imports}\n{signature}\n"
    if version >= "v0.1.2":  # a later version tightened the tests
        asserts = asserts + ["self.assertIsNotNone(task_func.__doc__ or True)"]
    test = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_case_1(self):\n" + "".join(
        f"        {a}\n" for a in asserts
    )
    doc = {
        "description": [desc],
        "notes": [],
        "params": [f"{args}: the input."],
        "returns": [returns],
        "reqs": libs,
        "raises": [],
        "examples": [f">>> {example}"],
    }
    return {
        "task_id": f"BigCodeBench/{i}",
        "complete_prompt": complete,
        "instruct_prompt": f"{desc}\nThe function should output with:\n    {returns}\n"
        f"You should write self-contained code starting with:\n```\n{code_prompt}```",
        "canonical_solution": "".join(f"    {line}\n" for line in body),
        "code_prompt": code_prompt,
        "test": test,
        "entry_point": "task_func",
        "doc_struct": json.dumps(doc),
        "libs": str(libs),
    }


TASKS = [make_row] * len(SPECS)
