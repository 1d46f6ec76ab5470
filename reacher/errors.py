"""reacher's errors, and turning a library's exception, or any text read from a file, into
part of reacher's one-line error messages and output.

Every error reacher raises for a bad input is one of the classes here, whichever layer
raises it, so any module can catch it without importing the layer above; the CLI prints
its message as one ``error: …`` line (messages name the thing at fault)."""

import re

# C0 and C1 controls, DEL, the line and paragraph separators and the bidirectional
# overrides: what lets text from a file move the cursor, retitle or clear the terminal,
# start a new line or show itself reversed; and lone surrogates, which is how Python
# keeps a file name's bytes that are not UTF-8 (they cannot be printed as they are).
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


# --- the shared base: settings, env ids, files -----------------------------------------------

class ConfigError(ValueError):
    """A config file or value reacher cannot use; the message names the key."""


class EnvIdError(ValueError):
    """An env id reacher will not make; the message names where it came from."""


class LockBusy(Exception):
    """Another process holds the lock file at `path` (see reacher.run.lock); `holder` says
    which, as the file records it ("pid 123 on host", or "holder unknown")."""

    def __init__(self, path, holder: str):
        super().__init__(f"{path}: held by {holder}")
        self.path, self.holder = path, holder


class UnreadableFile(ValueError):
    """A file reacher refuses to read: missing, not a regular file, too large, a link
    where none is allowed, or unreadable. ``problem`` is the reason without the path."""

    def __init__(self, path, problem: str, missing: bool = False):
        self.path, self.problem, self.missing = str(path), problem, missing
        super().__init__(f"{path}: {problem}")


class CannotWrite(OSError):
    """A file that could not be written (a full disk, no permission): its message is
    ``cannot write FILE: REASON``. Nothing of it was left behind."""

    def __init__(self, path, err: OSError):
        super().__init__(err.errno, err.strerror or str(err))
        self.filename = str(path)

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"



# --- the simulation ---------------------------------------------------------------------------

class ArmFileError(ValueError):
    """An arm file that reacher cannot use; the message names the file and the problem."""

    def __init__(self, source, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"arm file {self.source}: {problem}")


class ControlError(ValueError):
    """A control setting that cannot work for this arm; the message names the setting."""


class RenderError(RuntimeError):
    """No working OpenGL backend for offscreen rendering."""


# --- a run --------------------------------------------------------------------------------------

class Stopped(Exception):
    """A signal asked the run or sweep to stop (`reacher.run.signals.StopOnSignals.check`)."""


class PhysicsError(ValueError):
    """The simulation blows up in every episode: the arm file (or env) is at fault."""


class DivergedError(ValueError):
    """Training's networks blew up (their action is NaN or inf); the message names the settings."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"checkpoint {path}: {problem}")


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists already, nothing to resume)."""


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock."""


# --- the tools and the CLI ------------------------------------------------------------------------

class ExportError(ValueError):
    """An export that cannot be done; the message names the file or run at fault."""


class SpecError(ConfigError):
    """A sweep spec reacher cannot use; the message names the file and the key."""


class SweepError(ValueError):
    """A sweep that cannot run as asked; one line for the user."""


class CliError(Exception):
    """A user-facing error raised by the CLI itself."""
