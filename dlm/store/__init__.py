"""What dlm writes and reads back: run records, lineage beside the weights, leases on run keys."""
