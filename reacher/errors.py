"""Turning a library's exception, or any text read from a file, into part of reacher's
one-line error messages and output."""

import re

# C0 and C1 controls, DEL, the line and paragraph separators and the bidirectional
# overrides: what lets text from a file move the cursor, retitle or clear the terminal,
# start a new line or show itself reversed. And lone surrogates: the bytes of a file name
# that is not UTF-8 (\udcff for 0xff), which a UTF-8 stdout refuses to print at all.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text) -> str:
    """`text` with every control character escaped as Python writes it (``\\x1b``, ``\\n``):
    what reacher prints of a file's text (a checkpoint's arm or stop reason, a name a
    user typed) shows as itself and cannot act on the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def one_line(err: BaseException, limit: int | None = 300) -> str:
    """The exception's message on one line (MuJoCo and torch write several), its control
    characters escaped, cut at `limit` (None: not cut)."""
    text = printable(" ".join(str(err).split()))
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


class LockBusy(Exception):
    """Another process holds the lock file at `path` (see reacher.run.lock); `holder` says
    which, as the file records it ("pid 123 on host", or "holder unknown")."""

    def __init__(self, path, holder: str):
        super().__init__(f"{path}: held by {holder}")
        self.path, self.holder = path, holder
