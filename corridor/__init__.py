"""Corridor: composition root (the `corridor` command) and plumbing shared by the services."""
