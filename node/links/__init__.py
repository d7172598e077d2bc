"""The cross-border match ledger: which animal of mine is which animal of yours."""
