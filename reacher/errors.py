"""Turning a library's exception into part of reacher's one-line error messages."""


def one_line(err: BaseException, limit: int = 300) -> str:
    """The exception's message on one line (MuJoCo and torch write several), cut at `limit`."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "…"
