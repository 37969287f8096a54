"""The one error hierarchy of vidcost.

Every error a user can cause derives from `VidcostError`; the CLI turns it into a one-line message
and exit code 2. Messages say what failed, quote the value, and say how to fix it.
"""


class VidcostError(Exception):
    """Base class of every error vidcost raises on purpose."""


class ConfigError(VidcostError):
    """Bad user input: an unknown preset or method, a malformed schedule, a value out of range."""


class ProfilingError(VidcostError):
    """A measurement could not be taken (no CUDA, out of memory, an undecodable video)."""


class FitError(VidcostError):
    """A latency model could not be fitted (too few profiles, degenerate data)."""


class DataFormatError(VidcostError):
    """A stored or ingested file does not have the expected format."""
