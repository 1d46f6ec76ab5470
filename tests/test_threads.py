"""How many torch threads a run takes: one unless asked, since a second one collapses
as soon as another process shares the cores (docs/benchmarks.md, "Cost per learning step")."""

from __future__ import annotations

import torch

from reacher.config import Config
from reacher.run import settings as adapt
from reacher.run.training import Training


def test_auto_is_one_thread_and_a_request_is_kept():
    assert adapt.torch_threads(0) == 1
    assert adapt.torch_threads(3) == 3


def test_a_default_run_sets_one_torch_thread(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1), tmp_path / "run", progress=False)
        assert torch.get_num_threads() == 1
        Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1, threads=2), tmp_path / "run2",
                 progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
