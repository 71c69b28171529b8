"""Plans: a YAML matrix of runs, expanded into keyed runs and run resumably, sequentially or in parallel."""
