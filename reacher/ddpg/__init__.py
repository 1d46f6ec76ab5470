"""The learning algorithm, tensors and arrays only (no env, no files): the DDPG/TD3 agent,
its networks, the update (by hand and by autograd), Adam, replay with hindsight and n-step,
and exploration noise."""
