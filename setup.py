"""The wheel carries samples/ and plans/ inside the package (dlm/_shipped/), so that `dlm demo`, the tiny model and
the quickstart notebook work from a plain (non-editable) install, e.g. `pip install git+URL` on Colab. A checkout
or an editable install reads them where they are (dlm/files.py `shipped`). Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("samples", "plans")


class BuildWithShippedData(build_py):
    def run(self):
        super().run()
        here = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "dlm" / "_shipped" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(here / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithShippedData})
