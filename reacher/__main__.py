"""`python -m reacher` is the `reacher` command."""

from reacher.cli import run

run()
