"""Which joint configurations put an arm in collision with itself or its surroundings.

Targets are the fingertip at a random configuration, and episodes start from one: a
configuration whose links pass through each other or through the floor would ask for
a reach the arm cannot make, or start the physics interpenetrating. MuJoCo's own
collision detection answers the question, with the model's contact filtering
(contype/conaffinity, excluded pairs, parent-child filtering) as the file defines it.

Some geom pairs touch in every configuration by design (a link's shell overlapping
its neighbour's at a joint the file does not exclude). Those pairs are learnt from
random configurations when the check is built and ignored afterwards; otherwise no
configuration would ever pass.
"""

from __future__ import annotations

import mujoco
import numpy as np

PENETRATION_M = 1e-3  # deeper than this is a collision; grazing contact is not
ALWAYS_TOUCHING = 0.95  # a pair in contact in this share of random configurations is by design
MAX_DRAWS = 100  # redraws before accepting a configuration in collision
LEARNING_SAMPLES = 200  # random configurations the by-design pairs are learnt from


class CollisionCheck:
    """`hits(data, q)`: does configuration q collide (beyond the by-design pairs)?"""

    def __init__(self, model: mujoco.MjModel, qpos_adr: np.ndarray, samples: np.ndarray):
        self.model = model
        self.qpos_adr = qpos_adr
        self.ignored: frozenset[tuple[int, int]] = frozenset()
        self.can_collide = model.ngeom > 1 and bool(
            np.any(model.geom_contype) and np.any(model.geom_conaffinity))
        if not self.can_collide or len(samples) == 0:
            return
        data = mujoco.MjData(model)
        counts: dict[tuple[int, int], int] = {}
        for q in samples:
            for pair in self._pairs(data, q):
                counts[pair] = counts.get(pair, 0) + 1
        self.ignored = frozenset(p for p, n in counts.items() if n >= ALWAYS_TOUCHING * len(samples))

    @classmethod
    def for_arm(cls, model: mujoco.MjModel, arm) -> CollisionCheck:
        """The check every user of an arm shares (the env's starts and targets, `reacher
        inspect`'s probes): by-design pairs learnt from the same seeded samples."""
        samples = np.random.default_rng(0).uniform(arm.joint_low, arm.joint_high,
                                                   (LEARNING_SAMPLES, arm.n_joints))
        return cls(model, arm.qpos_adr, samples)

    def hits(self, data: mujoco.MjData, q: np.ndarray) -> bool:
        if not self.can_collide:
            return False
        return any(pair not in self.ignored for pair in self._pairs(data, q))

    def free_configuration(self, data: mujoco.MjData, draw) -> np.ndarray:
        """A configuration from `draw()` that does not collide; after MAX_DRAWS tries the
        last one drawn (an arm that collides almost everywhere still gets targets)."""
        q = draw()
        for _ in range(MAX_DRAWS - 1):
            if not self.hits(data, q):
                break
            q = draw()
        return q

    def _pairs(self, data: mujoco.MjData, q: np.ndarray) -> set[tuple[int, int]]:
        data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_collision(self.model, data)
        contacts = data.contact[:data.ncon]
        deep = contacts.dist < -PENETRATION_M
        return {(int(a), int(b)) for a, b in contacts.geom[deep]}
