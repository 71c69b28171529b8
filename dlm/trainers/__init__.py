"""Everything that produces a checkpoint: configs, which rows a run trains on, model loading, pretraining, SFT."""
