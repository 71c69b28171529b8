"""The study layer: the table of run settings, train -> evaluate cycles, plan files and their runner, the demo."""
