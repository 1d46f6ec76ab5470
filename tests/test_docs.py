"""The README stays true: its quick start and its config reference match the code."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_start_is_exactly_make_demo_and_make_test():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    assert block.split("\n")[:-1] == ["make demo", "make test"]


def test_config_reference_is_generated_from_the_dataclass():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_table.py"), "--check"])
    assert result.returncode == 0, "README config table is stale: run python scripts/config_table.py"


def test_makefile_targets_the_readme_promises():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo:", "test:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text(encoding="utf-8")
