"""A training run's bookkeeping: the settings resolved for the arm, the training loop, the
success gate, evaluation, the checkpoint, the run directory and its lock, metrics, and a
trained policy loaded back."""
