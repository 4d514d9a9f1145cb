"""The one exception type bad input raises, so callers and the CLI can catch it cleanly."""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file, row and field."""
