"""The reaching task on a simulated arm: targets, observations, reward, success, the
Gymnasium environment `ReachEnv`, its goal-conditioned form and the randomisation wrappers."""
