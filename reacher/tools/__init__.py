"""Tools built on trained runs: video, ONNX export, arm inspection, and Ray Tune sweeps."""
