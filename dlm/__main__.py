"""`python -m dlm ...` is the `dlm` console script."""

from dlm.cli import main

main()
