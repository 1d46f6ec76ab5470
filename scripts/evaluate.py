"""Evaluate a trained run from a checkout: exactly `reacher evaluate` (`--help` lists the flags).

    python scripts/evaluate.py runs/two_link-seed0
    python scripts/evaluate.py runs/two_link-seed0 --json --episodes 100

It runs the reacher package of this checkout, installed or not (its dependencies must
be: `make setup` installs them into .venv).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reacher.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
