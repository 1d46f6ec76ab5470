"""`python -m reacher` is the `reacher` command."""

import sys

from reacher.cli import main

sys.exit(main())
