"""What suits an arm: the controller and the episode length it gets when none is given.

Both are read from the compiled model (its actuators), never from the file's name, so a
user's own arm gets them too. `ReachEnv` uses them for an argument left unset and
`reacher.run.settings` for a Config field left at "auto", so the two always agree.
"""

from __future__ import annotations

from reacher.errors import ControlError
from reacher.sim.arm import Arm, position_servos
from reacher.sim.controllers import EndEffectorControl
from reacher.sim.physics import Physics
from reacher.sim.timing import EPISODE_S

# Episode length: 1 s suits torque-driven arms, which can be pushed as hard as their
# motors allow. An arm driven by position servos moves only as fast as its servos
# settle: holding the exact target configuration, Menagerie's Panda, Gen3 and xArm7
# reach 75 %, 75 % and 25 % of targets within 2 cm after 1 s, but 95 %, 90 % and 80 %
# after 2 s (docs/benchmarks.md). Torque-driven arms keep reacher.sim.timing.EPISODE_S.
SERVO_EPISODE_S = 2.0
# Torque-driven arms with at least this many actuators reach through `ee` (see control_for).
EE_FROM_ACTUATORS = 4


def episode_seconds(arm: Arm) -> float:
    """The default episode length for this arm (see SERVO_EPISODE_S)."""
    servo_driven = len(position_servos(arm.model)) * 2 > arm.n_actuators
    return SERVO_EPISODE_S if servo_driven else EPISODE_S


def control_for(arm: Arm) -> tuple[str, str]:
    """The controller ``control="auto"`` picks for this arm, and why, in words.

    Measured across arms (docs/benchmarks.md, "Controllers" and "Learning on 7-DOF
    arms"): learning joint control stalls on position-servo arms (Panda, Gen3 0 %;
    servo_arm 82 % at its cap), where a scripted policy through the end-effector
    controller already reaches 73-100 %. On torque-driven arms it depends on how many
    actuators the policy would drive. With more than the end effector's three, learning
    through ``ee`` is far ahead in the same 5 minutes (four_link 94 % against 61 %; the
    7-DOF iiwa14_torque 71 % against 0 %): three actions instead of one per joint, and
    the controller coordinates the rest. With three or fewer the action is no smaller
    and a local controller cannot choose the arm's configuration (spatial_arm: scripted
    ee 63 %, stopped at joint limits), so two_link, three_link and spatial_arm learn
    their torques. So: servo arms, and torque arms with more than EE_FROM_ACTUATORS - 1
    actuators, reach through the end effector; small torque arms learn joint torques."""
    servos = len(position_servos(arm.model))
    n = arm.n_actuators
    if servos == 0 and n < EE_FROM_ACTUATORS:
        return "joint", (f"{n} torque actuator{'s' if n > 1 else ''}, no more than the end effector's "
                         "3 dimensions: the policy learns the torques directly")
    if 0 < servos < n:
        return "joint", (f"{n - servos} of {n} actuators are not position servos: the policy "
                         "learns every actuator's control directly")
    try:
        EndEffectorControl(Physics(arm, 1), speed=1.0)
    except ControlError as err:
        return "joint", f"{'position servos' if servos else f'{n} torque actuators'}, but {err}"
    if servos:
        return "ee", ("driven by position servos: the policy moves the end effector and "
                      "damped-least-squares IK sets the servo targets")
    return "ee", (f"{n} torque actuators, more than the end effector's 3 dimensions: the policy "
                  "moves the end effector and operational-space control sets the torques")
