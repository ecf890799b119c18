"""Subcommands of the `ivuscal` command line that belong to the engine."""
