"""The bottom layer: the dataset table, data loading and the evaluation holdout rule, run records, UserError.
Both training and evaluation import it; it imports no other dlm package."""
