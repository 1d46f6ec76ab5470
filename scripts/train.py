"""Train from a checkout: exactly `reacher train`, with every flag (`--help` lists them).

    python scripts/train.py                                   # the two-link arm, defaults
    python scripts/train.py --arm three_link --seed 1 --run-dir runs/three
    python scripts/train.py --run-dir runs/three --resume     # continue after Ctrl-C

It runs the reacher package of this checkout, installed or not (its dependencies must
be: `make setup` installs them into .venv).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reacher.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
