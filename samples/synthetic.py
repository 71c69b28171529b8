"""Synthetic row makers for the sample snapshots: schema-true rows with clear, learnable cues.

Every function takes a `random.Random` so the output depends only on the seed in make_samples.py.
Classification rows carry unmistakable cue words per label (a tiny model must be able to learn them);
generative rows are short but shaped like the real thing (GSM8K `<<calc>>` + `#### N`, 10-K Q/A/context...).
"""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

SEED = 20240601  # the one seed of samples/: each repository draws from random.Random(f"{SEED}-<maker name>")
COMPANIES = [
    "Nokia",
    "Fiskars",
    "Kone",
    "Stora Enso",
    "Wartsila",
    "Outokumpu",
    "Elisa",
    "Orion",
    "Sampo",
    "Neste",
    "Metso",
    "Tieto",
    "Finnair",
    "Ahlstrom",
    "Raisio",
    "Cargotec",
    "Ramirent",
    "Aspo",
    "Basware",
    "Lassila",
]
TICKERS = ["AAPL", "TSLA", "MSFT", "AMZN", "GOOG", "NFLX", "NVDA", "META", "JPM", "XOM", "BA", "DIS", "INTC", "AMD"]
CITIES = ["Helsinki", "Espoo", "Tampere", "Oulu", "Turku", "Stockholm", "Oslo", "Berlin", "London", "Boston"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]

# Financial sentiment cue phrases. The same cue vocabulary serves FPB, tweets, FiQA and FinGPT, as in reality.
FIN_CUES = {
    "positive": [
        "operating profit rose to EUR {n} mn",
        "net sales increased by {p} %",
        "won a new order worth EUR {n} mn",
        "earnings beat expectations",
        "profit grew {p} % year on year",
        "shares surged after strong results",
        "reported record revenue",
        "raised its full-year outlook",
        "margins improved strongly",
    ],
    "negative": [
        "operating loss widened to EUR {n} mn",
        "net sales decreased by {p} %",
        "will cut {n} jobs",
        "earnings missed expectations",
        "profit fell {p} %",
        "shares plunged after weak results",
        "warned of falling demand",
        "cut its full-year outlook",
        "reported a heavy loss",
    ],
    "neutral": [
        "is headquartered in {city}",
        "will hold its annual general meeting on {month} {d}",
        "operates {n} stores in {city}",
        "signed the agreement in {city}",
        "publishes its report in {month}",
        "has {n} employees",
        "appointed a new board member",
        "is listed on the stock exchange",
    ],
}


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        n=rng.randint(2, 900),
        p=rng.randint(2, 60),
        city=rng.choice(CITIES),
        month=rng.choice(MONTHS),
        d=rng.randint(1, 28),
    )


def fin_phrase(rng: random.Random, polarity: str) -> str:
    return _fill(rng, rng.choice(FIN_CUES[polarity]))


def fpb_sentence(rng: random.Random, polarity: str) -> str:
    """Financial PhraseBank style: news sentence, tokenised punctuation (`word , word .`)."""
    lead = rng.choice(["", f"In {rng.choice(MONTHS)} , ", "According to the company , ", f"In Q{rng.randint(1, 4)} , "])
    return f"{lead}{rng.choice(COMPANIES)} {fin_phrase(rng, polarity)} ."


def tweet(rng: random.Random, polarity: str) -> str:
    tag = rng.choice(TICKERS)
    extra = rng.choice(
        ["", " https://t.co/" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz0123456789") for _ in range(8))]
    )
    word = {
        "positive": rng.choice(["Bullish:", "Upgrade:", "Rally:"]),
        "negative": rng.choice(["Bearish:", "Downgrade:", "Selloff:"]),
        "neutral": rng.choice(["Update:", "Schedule:", "Notice:"]),
    }[polarity]
    return f"{word} ${tag} {fin_phrase(rng, polarity)}{extra}"


def unseen(rng: random.Random, make, seen, tries: int = 50) -> str:
    """A text from `make()` that is not in `seen`: evaluation rows must not repeat training rows by accident."""
    for _ in range(tries):
        text = make()
        if text not in seen:
            return text
    raise RuntimeError("sample generator: template space too small for distinct rows")


def fiqa_score(rng: random.Random, polarity: str) -> float:
    """A continuous score whose FinGPT bin (<-0.1 neg, [-0.1, 0.1) neu, >=0.1 pos) is `polarity`."""
    lo, hi = {"positive": (0.15, 0.95), "negative": (-0.95, -0.15), "neutral": (-0.08, 0.08)}[polarity]
    return round(rng.uniform(lo, hi), 3)


def balanced(rng: random.Random, n: int, labels) -> list:
    """n labels cycling through `labels`, shuffled: balanced classes, random order."""
    out = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(out)
    return out


# --- movie reviews (IMDB, SST-2) ---------------------------------------------------------------------------
REVIEW = {
    "pos": [
        "This movie was wonderful.",
        "The acting was brilliant and moving.",
        "A beautiful, funny and touching story.",
        "I loved every minute of it.",
        "The director delivers a masterpiece.",
        "Great music and a superb cast.",
    ],
    "neg": [
        "This movie was terrible.",
        "The acting was awful and wooden.",
        "A boring, stupid and pointless story.",
        "I hated every minute of it.",
        "The director delivers a mess.",
        "Bad music and a dreadful cast.",
    ],
    "mid": [
        "The film runs about two hours.",
        "It was shot in the summer.",
        "The plot follows a family in a small town.",
        "I watched it on a Sunday.",
        "The cast includes several newcomers.",
    ],
}


REVIEW_CUES = {  # the words a tiny model learns the label from
    "pos": ["wonderful", "brilliant", "moving", "superb", "beautiful", "touching", "funny", "gripping", "charming"],
    "neg": ["terrible", "awful", "wooden", "boring", "pointless", "dreadful", "stupid", "dull", "clumsy"],
}
FILM_PARTS = ["acting", "music", "plot", "script", "ending", "camera work", "dialogue", "pacing", "soundtrack", "story"]
TITLE_WORDS = ["Harbor", "Winter", "Garden", "Signal", "River", "Mirror", "Station", "Orchard", "Lantern", "Desert"]


def review(rng: random.Random, label: str) -> str:
    """A short review: a stock sentence of its label, a film of its own (title, year, cast) and its cue words."""
    title = f"The {rng.choice(TITLE_WORDS)} of {rng.choice(CITIES)}"
    cue = REVIEW_CUES[label]
    parts = [
        rng.choice(REVIEW[label]),
        f"{title} ({rng.randint(1950, 2020)}) has a {rng.choice(cue)} {rng.choice(FILM_PARTS)}.",
        f"The {rng.choice(FILM_PARTS)} felt {rng.choice(cue)} and {rng.choice(cue)}.",
        rng.choice(REVIEW["mid"]),
    ]
    rng.shuffle(parts)
    return " ".join(parts) + (" <br /><br />" + rng.choice(REVIEW[label]) if rng.random() < 0.3 else "")


def topic_tweet(rng: random.Random, topic: int) -> str:
    cues = [
        "analyst raises price target",
        "Fed holds interest rates",
        "company launches new product",
        "Treasury yields and corporate bond issuance",
        "board declares quarterly dividend",
        "quarterly earnings report",
        "crude oil and energy prices",
        "bank stocks and financials",
        "dollar and euro exchange rate",
        "opinion on the economy",
        "gold and metals prices",
        "IPO priced on the exchange",
        "regulator files lawsuit",
        "merger and acquisition deal",
        "GDP and inflation data",
        "stock market indices",
        "election and politics news",
        "CEO steps down, new CFO named",
        "stock commentary and chart view",
        "shares move sharply in trading",
    ]
    return f"${rng.choice(TICKERS)} {cues[topic]} {rng.choice(['today', 'this week', 'update', 'report', 'news'])}"


# --- numbers and math ---------------------------------------------------------------------------------------
GSM_NAMES = ["Natalia", "Weng", "Betty", "James", "Julie", "Tina", "Mark", "Albert", "Priya", "Omar", "Lena", "Hugo"]
GSM_ITEMS = ["clips", "pencils", "stickers", "apples", "marbles", "books", "cookies", "stamps", "shells", "cards"]
GSM_PLACES = ["market", "school fair", "corner shop", "library sale", "bakery", "garage sale", "flea market"]


def gsm8k(rng: random.Random) -> tuple[str, str, str]:
    """(question, main answer, socratic answer) with calculator annotations and the `#### N` final line. Every few
    words carry a name, an item, a place or a number, so two problems share no long run of words (as real GSM8K
    problems do not)."""
    name = rng.choice(GSM_NAMES)
    item, place, month = rng.choice(GSM_ITEMS), rng.choice(GSM_PLACES), rng.choice(MONTHS)
    a, b, c = rng.randint(2, 60) * 2, rng.randint(2, 12), rng.randint(2, 30)
    kind = rng.randrange(3)
    if kind == 0:
        q = (
            f"{name} sold {a} {item} at the {place} in {month}, and then sold half as many {item} in "
            f"{MONTHS[(MONTHS.index(month) + 1) % len(MONTHS)]}. How many {item} did {name} sell altogether?"
        )
        steps = [
            (f"How many {item} did {name} sell later?", f"{name} sold {a}/2 = <<{a}/2={a // 2}>>{a // 2} {item}."),
            (
                f"How many {item} did {name} sell in all?",
                f"{name} sold {a}+{a // 2} = <<{a}+{a // 2}={a + a // 2}>>{a + a // 2} {item} altogether.",
            ),
        ]
        ans = a + a // 2
    elif kind == 1:
        q = (
            f"{name} buys {b} boxes of {item} at the {place}. Each box holds {c} {item}. {name} gives {b} "
            f"{item} to a friend in {month}. How many {item} are left?"
        )
        steps = [
            (f"How many {item} did {name} buy?", f"{name} bought {b}*{c} = <<{b}*{c}={b * c}>>{b * c} {item}."),
            ("How many are left?", f"{name} has {b * c}-{b} = <<{b * c}-{b}={b * c - b}>>{b * c - b} {item} left."),
        ]
        ans = b * c - b
    else:
        q = (
            f"{name} earns ${c} an hour selling {item} at the {place}. In {month}, {name} worked {b} hours "
            f"and got a ${a} bonus. How much did {name} earn?"
        )
        steps = [
            (f"How much did {b} hours pay?", f"The {b} hours paid {c}*{b} = $<<{c}*{b}={c * b}>>{c * b}."),
            ("How much in total?", f"In total {name} earned {c * b}+{a} = $<<{c * b}+{a}={c * b + a}>>{c * b + a}."),
        ]
        ans = c * b + a
    main = "\n".join(s for _, s in steps) + f"\n#### {ans}"
    socratic = "\n".join(f"{sq} ** {s}" for sq, s in steps) + f"\n#### {ans}"
    return q, main, socratic


def _prime_factors(n: int) -> list[int]:
    return [p for p in range(2, n + 1) if n % p == 0 and all(p % d for d in range(2, int(p**0.5) + 1))]


def _poly(rng: random.Random, var: str) -> tuple[list[int], str]:
    coeffs = [rng.randint(-9, 9) or 1 for _ in range(3)]
    return coeffs, f"{coeffs[0]}*{var}**2 + {coeffs[1]}*{var} + {coeffs[2]}".replace("+ -", "- ")


def deepmind(rng: random.Random, module: str) -> tuple[str, str]:
    """One question/answer pair for a DeepMind mathematics module (base modules; `_composed` adds a preamble)."""
    base = module.removesuffix("_composed")
    a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 12)
    x = rng.randint(-9, 9)
    if base == "algebra__linear_1d":
        q, ans = f"Solve {c}*x + {a} = {c * x + a} for x.", x
    elif base == "algebra__linear_2d":
        q, ans = f"Solve {c}*x + y = {c * x + b}, y = {b} for x.", x
    elif base == "algebra__polynomial_roots":
        r1, r2 = sorted(rng.sample(range(-12, 13), 2))
        q, ans = f"Solve x**2 + {-(r1 + r2)}*x + {r1 * r2} = 0 for x.".replace("+ -", "- "), f"{r1}, {r2}"
    elif base.startswith("algebra__sequence"):
        q, ans = f"What is the next term in {a}, {a + c}, {a + 2 * c}, {a + 3 * c}?", a + 4 * c
    elif base == "arithmetic__add_or_sub_in_base":
        q, ans = f"In base 2, what is {bin(a)[2:]} + {bin(b)[2:]}?", bin(a + b)[2:]
    elif base.startswith("arithmetic__add"):
        q, ans = f"What is {a} - {b} + {c}?", a - b + c
    elif base == "arithmetic__div":
        q, ans = f"Divide {a * c} by {c}.", a
    elif base.startswith("arithmetic__mul"):
        q, ans = f"Calculate {a}*{c}.", a * c
    elif base == "arithmetic__mixed":
        q, ans = f"Evaluate ({a} - {b}) * {c}.", (a - b) * c
    elif base == "arithmetic__nearest_integer_root":
        q, ans = f"What is the square root of {a * a + 1} to the nearest integer?", a
    elif base == "arithmetic__simplify_surd":
        k = rng.choice([2, 3, 5, 6, 7, 10])
        q, ans = f"Simplify sqrt({c * c * k}).", f"{c}*sqrt({k})"
    elif base == "calculus__differentiate":
        coeffs, p = _poly(rng, "x")
        q, ans = f"Differentiate {p} with respect to x.", f"{2 * coeffs[0]}*x + {coeffs[1]}".replace("+ -", "- ")
    elif base.startswith("comparison__"):
        vals = sorted({a, b, c, x})
        q, ans = f"What is the biggest value in {', '.join(map(str, rng.sample(vals, len(vals))))}?", vals[-1]
    elif base == "measurement__conversion":
        big, small, factor = rng.choice(
            [
                ("kilometers", "meters", 1000),
                ("meters", "centimeters", 100),
                ("hours", "minutes", 60),
                ("kilograms", "grams", 1000),
            ]
        )
        q, ans = f"How many {small} are there in {a + c} {big}?", (a + c) * factor
    elif base == "measurement__time":
        q, ans = f"What is {c} minutes after 10:{a % 50 + 5:02d} AM?", f"10:{a % 50 + 5 + c:02d} AM"
    elif base == "numbers__base_conversion":
        q, ans = f"Convert {a} (base 10) to base 2.", bin(a)[2:]
    elif base == "numbers__div_remainder":
        q, ans = f"What is the remainder when {a} is divided by {c}?", a % c
    elif base == "numbers__gcd":
        q, ans = f"Calculate the greatest common divisor of {a * c} and {b * c}.", math.gcd(a * c, b * c)
    elif base == "numbers__lcm":
        q, ans = f"What is the lowest common multiple of {a} and {c}?", a * c // math.gcd(a, c)
    elif base == "numbers__is_factor":
        q, ans = f"Is {c} a factor of {a * c}?", "True"
    elif base == "numbers__is_prime":
        q, ans = f"Is {a} a prime number?", str(a > 1 and all(a % k for k in range(2, int(a**0.5) + 1)))
    elif base == "numbers__list_prime_factors":
        n = rng.randint(10, 999)
        q, ans = f"List the prime factors of {n}.", ", ".join(str(p) for p in _prime_factors(n))
    elif base == "numbers__place_value":
        q, ans = f"What is the tens digit of {a * 100 + b}?", (b // 10) % 10
    elif base == "numbers__round_number":
        d = b % 10
        q, ans = f"Round {a}.{d} to the nearest integer.", a + (1 if d >= 5 else 0)
    elif base.startswith("probability__"):
        counts = dict(zip(rng.sample("abcdefgh", 2), (rng.randint(2, 9), rng.randint(1, 9))))
        (x1, k1), (x2, k2) = counts.items()
        letters = "".join(sorted(x1 * k1 + x2 * k2))
        n = k1 + k2
        if base == "probability__swr_p_level_set":
            q, ans = (
                f"Two letters picked without replacement from {letters}. What is prob of picking 2 {x1}?",
                Fraction(k1 * (k1 - 1), n * (n - 1)),
            )
        else:
            q, ans = (
                f"Two letters picked without replacement from {letters}. What is prob of sequence {x1}{x2}?",
                Fraction(k1 * k2, n * (n - 1)),
            )
    elif base.startswith("polynomials__"):
        coeffs, p = _poly(rng, "t")
        q, ans = f"Let f(t) = {p}. What is f({c})?", coeffs[0] * c * c + coeffs[1] * c + coeffs[2]
    else:
        raise ValueError(f"no generator for module {module}")
    if module.endswith("_composed"):
        q = f"Let k = {a} - {a}. Suppose k = 0. " + q
    return q, str(ans)


# --- free-text finance -------------------------------------------------------------------------------------
def finance_qa(rng: random.Random) -> dict:
    """A FiQA-style (StackExchange Investment) question and answer. Real questions are each asked once, with
    the asker's own details: an amount, a horizon, a share, so no two answers share a long run of words."""
    topic, fact = rng.choice(
        [
            ("index funds", "they are diversified and cheap"),
            ("a Roth IRA", "withdrawals in retirement are tax free"),
            ("dividend stocks", "dividends are taxed as income"),
            ("paying off a mortgage early", "it saves interest but costs liquidity"),
            ("an emergency fund", "it should cover your expenses"),
            ("bond prices", "they fall when rates rise"),
        ]
    )
    amount, years, pct, months = rng.randint(1, 900) * 100, rng.randint(2, 40), rng.randint(2, 12), rng.randint(3, 12)
    return {
        "question": f"What should I know about {topic} if I have ${amount} to invest for {years} years?",
        "answer": f"With ${amount}, {fact}. Expect about {pct}% a year over {years} years, and keep {months} "
        f"months of costs in cash.",
    }


def ten_k_row(rng: random.Random) -> dict:
    ticker = rng.choice(TICKERS)
    revenue, growth = rng.randint(10, 400), rng.randint(1, 40)
    year = rng.randint(2019, 2023)
    context = (
        f"Total revenue for fiscal year {year} was ${revenue} billion, an increase of "
        f"{growth}% compared with the prior year, driven by higher demand."
    )
    # questions name the company and year, as real 10-K questions are specific (the eval holdout hashes them)
    q = rng.choice(
        [
            (f"What was {ticker}'s total revenue for fiscal year {year}?", f"${revenue} billion"),
            (f"By what percentage did {ticker}'s revenue increase in fiscal year {year}?", f"{growth}%"),
        ]
    )
    return {
        "question": q[0],
        "answer": f"Total revenue was ${revenue} billion, up {growth}%." if "total" in q[0] else q[1],
        "context": context,
        "ticker": ticker,
        "filing": "2023_10K",
    }


def wiki_article(rng: random.Random, raw: bool) -> list[str]:
    """WikiText lines of one article: heading, empty rows, paragraphs with a trailing newline."""
    name = rng.choice(["Valkyria Chronicles", "Tower Bridge", "Robert Boulter", "Du Fu", "Kiss You", "Ise class"])
    rare = rng.choice(["Senjō", "Fuchū", "Ardross", "Kameoka"])
    word = rare if raw else "<unk>"
    lines = ["", f" = {name} = \n", ""]
    papers = ["The Times", "The Guardian", "Nature", "The Herald", "The Observer", "Le Monde", "The Atlantic"]
    for section in ("History", "Reception"):
        first, later = rng.randint(1800, 1950), rng.randint(1951, 2010)
        lines += [
            f" {name} was first described in {first} by {word} and {rng.randint(2, 9)} others . "
            f"It became known in {later} after a review in {rng.choice(papers)} . \n",
            "",
            f" = = {section} = = \n",
            "",
            f" The {section.lower()} of {name} covers {rng.randint(2, 40)} years , with @-@ hyphenated "
            f"terms and {rng.randint(3, 60)} numbers such as {rng.randint(1, 9)} @,@ {rng.randint(100, 999)} . \n",
        ]
    return lines


def jstr(value) -> str:
    return json.dumps(value, sort_keys=True)
