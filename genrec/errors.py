"""The one exception type bad input raises, so callers and the CLI can catch it cleanly.

It lives at the bottom of the layer order and imports nothing, so any module (semid, tasks, baselines) can
raise it without pulling in pandas or datasets.
"""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file, row and field."""
