"""`python -m vidcost`: the same as the `vidcost` command."""

from vidcost.cli import entry_point

entry_point()
