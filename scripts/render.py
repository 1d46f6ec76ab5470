"""Render a trained run to MP4 or GIF from a checkout: exactly `reacher render` (`--help` lists the flags).

    python scripts/render.py runs/two_link-seed0 --out reach.mp4 --episodes 4
    python scripts/render.py runs/two_link-seed0 --out reach.gif --camera top --size 320x320

It runs the reacher package of this checkout, installed or not (its dependencies must
be: `make setup` installs them into .venv).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reacher.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["render", *sys.argv[1:]]))
