"""The one exception type bad input raises, so callers and the CLI can catch it cleanly.

It lives at the bottom of the layer order and imports nothing, so any module (semid, tasks, baselines) can
raise it without pulling in pandas or datasets.
"""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file, row and field."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message for a DataError: its first line, cut at a word boundary when long."""
    text = (str(err).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
