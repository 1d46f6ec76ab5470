"""The cloning term (`teacher_weight`) learns: on an arm driven through ``ee``, pulling the
actor toward the proportional controller's action beats learning from scratch at a
budget where scratch has not yet learnt."""

from __future__ import annotations

from pathlib import Path

from reacher.config import Config
from reacher.run.training import train

FOUR_LINK = str(Path(__file__).resolve().parent.parent / "examples" / "arms" / "four_link.xml")
# Calibration (1,000 steps, 30 final episodes, 1-2 s a run on 2 shared cores), seeds 0-3:
# teacher_weight 1 reached 90, 93, 90, 97 % (1.0-1.6 cm); 0 reached 10, 0, 0, 0 % (19-22 cm).
# At 1,500 steps: 97 / 87 / 93 % against 7 / 7 / 0 %.
SMALL = Config(arm=FOUR_LINK, end_effector="tip", steps=1000, warmup_steps=300, hidden_sizes=(64, 64),
               batch_size=64, eval_every=1000, eval_episodes=5, final_eval_episodes=30,
               checkpoint_every=10**6, threads=1, seed=0)


def test_cloning_the_controller_beats_learning_from_scratch(tmp_path):
    on = train(SMALL.replace(teacher_weight=1.0), run_dir=tmp_path / "on", progress=False).evaluation
    off = train(SMALL, run_dir=tmp_path / "off", progress=False).evaluation
    assert on.success_rate >= 0.7, f"with the teacher {on.success_rate:.0%}, {100 * on.mean_final_distance:.1f} cm"
    assert off.success_rate <= 0.4, f"from scratch {off.success_rate:.0%}: the budget no longer tells them apart"
    assert on.mean_final_distance < 0.5 * off.mean_final_distance
