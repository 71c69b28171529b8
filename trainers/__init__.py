"""Everything that produces a checkpoint: configs, the dataset table, pretraining and SFT."""
