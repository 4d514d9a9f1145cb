"""The one exception type bad input raises, so callers and the CLI can catch it cleanly.

It lives at the bottom of the layer order and imports nothing, so any module (semid, tasks, baselines) can
raise it without pulling in pandas or datasets.
"""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file, row and field."""


def describe(err: BaseException, limit: int = 300) -> str:
    """An exception for a DataError's message: its type and first line, cut at a word boundary when long."""
    text = (str(err).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}"
