"""Turning a library's exception into part of reacher's one-line error messages."""


def one_line(err: BaseException, limit: int = 300) -> str:
    """The exception's message on one line (MuJoCo and torch write several), cut at `limit`."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "…"


class LockBusy(Exception):
    """Another process holds the lock file at `path` (see reacher.run.lock); `holder` says
    which, as the file records it ("pid 123 on host", or "holder unknown")."""

    def __init__(self, path, holder: str):
        super().__init__(f"{path}: held by {holder}")
        self.path, self.holder = path, holder
