"""Write the repository's address (pyproject.toml's [project.urls] Repository, the one place it is written) into
notebooks/quickstart.ipynb: the `repository` install parameter and the Colab badge.

    python notebooks/sync_repository.py            # after changing the address in pyproject.toml
    python notebooks/sync_repository.py --check    # exit 1 when they differ (tests/test_notebook.py)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
PARAMETER = re.compile(r'^repository = "[^"]*"', re.M)
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]*")


def repository() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]


def colab_badge_url(url: str) -> str:
    """The Colab address of the notebook in that GitHub repository (its main branch)."""
    owner_name = url.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/quickstart.ipynb"


def synced(notebook: dict, url: str) -> dict:
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        text = PARAMETER.sub(f'repository = "{url}"', text)
        text = BADGE.sub(colab_badge_url(url), text)
        cell["source"] = text.splitlines(keepends=True)
    return notebook


def main(argv: list[str]) -> int:
    text = NOTEBOOK.read_text(encoding="utf-8")
    wanted = json.dumps(synced(json.loads(text), repository()), indent=1, ensure_ascii=False) + "\n"
    if wanted == text:
        return 0
    if "--check" in argv:
        print(f"{NOTEBOOK} does not carry pyproject.toml's Repository; run python {Path(__file__).relative_to(ROOT)}")
        return 1
    NOTEBOOK.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
