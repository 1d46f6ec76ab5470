"""How large anything reacher reads may be: every size and count, checked before it is allocated.

A number from a file or a flag (a layer width, a delay, a replicate count, a file's
length) is compared with its bound here before anything of that size is built, so an
absurd value is one error naming it instead of gigabytes allocated and a MemoryError.
The bounds are far beyond any working run or arm; each says why it is where it is.
`reacher.config` checks a Config's fields against them (so train, evaluate, inspect,
export and the Python API all do), `reacher.run.checkpoint` a checkpoint's declared
sizes, and `reacher.sim.armfile` an arm file and what it includes and names.
"""

from __future__ import annotations

# --- a config's numbers --------------------------------------------------------------------
# Every integer must fit numpy's and torch's int64; seeds leave room for the episode
# numbers evaluation adds. Networks and the replay buffer are allocated up front, so
# their sizes are capped by what memory can hold.
MAX_INT = 2**63 - 1
MAX_SEED = 2**62
MAX_WIDTH = 65_536
MAX_LAYERS = 64
MAX_HIDDEN_WEIGHTS = 2**28  # between hidden layers: 1 GiB of float32 per network, ×12 for a run
MAX_BUFFER = 100_000_000  # transitions: a two-link arm's 100M take 14 GB
MAX_THREADS = 1024
# Gradient updates per environment step: replay-ratio studies go to 20 or so (REDQ); beyond
# this a step takes minutes, and a fractional count of 1e17 no longer changes when 1 is
# taken from it, so a step would never end.
MAX_UPDATES_PER_STEP = 1000
MAX_EPISODE_S = 600.0  # s of simulated time per episode (see Config.validate)
MAX_EPISODE_STEPS = 1_000_000
MAX_FRAME_SKIP = 1_000_000  # physics steps per action: MuJoCo counts them in a C int
# The observation carries the last action_delay_steps actions (reacher.task.randomize), so
# the delay is an observation size: 1,000 steps is 20 s at 50 Hz, beyond any latency.
MAX_ACTION_DELAY_STEPS = 1_000
# n-step returns gather n rewards per sampled transition: beyond an episode's length more
# add nothing, and a batch of them is allocated per update.
MAX_N_STEP = 1_000

# --- files ------------------------------------------------------------------------------------
MAX_CONFIG_BYTES = 2**20  # a config file is a few kB; a larger one is not one
MAX_RUN_FILE_BYTES = 256 * 2**20  # metrics.csv: a row per evaluation, a few MB for a long run
MAX_ARM_BYTES = 16 * 2**20  # MJCF text: the largest published models are a few hundred kB
MAX_ASSET_BYTES = 128 * 2**20  # one mesh, texture, height field or skin an arm names
MAX_ASSETS_BYTES = 512 * 2**20  # all of them together
MAX_INCLUDES = 200  # <include> and <model> files read, all levels together

# --- what an arm file builds ------------------------------------------------------------------
# MuJoCo reads about 500 nested elements; deeper is refused as soon as it is seen.
MAX_XML_DEPTH = 500
# Elements of the model once <replicate>, <flexcomp> and <composite> are expanded: the
# largest published models have a few thousand, and MuJoCo's compiler slows down
# quadratically with their number (10,000 bodies take it 15 s).
MAX_MODEL_ELEMENTS = 20_000
MAX_HFIELD_SAMPLES = 2**24  # a 4096 x 4096 height field; MuJoCo needs ~16 bytes per sample
MAX_TEXTURE_PIXELS = 2**26  # 8192 x 8192 RGBA, 256 MiB; a cube's six faces count six times
MAX_MESH_VERTICES = 2**17  # a builtin mesh's: MuJoCo took 1.5 GB and 40 s for a million, 2 s for 90,000
# <visual>'s shadow map and offscreen buffer, allocated when the arm is rendered: a
# 100000-pixel shadowsize asks the GL for 40 GB.
MAX_RENDER_SIDE = 16_384
MAX_ARENA_BYTES = 2**30  # <size memory="...">: MjData's arena, allocated with it
# A GIF's distinct frames are kept in memory until the file is written (one palette for
# all of them): 480 x 480 RGB is 0.7 MB a frame, about 35 MB for a 2-s episode at 25 fps.
MAX_GIF_FRAME_BYTES = 2**31


def config_size_problem(values) -> str | None:
    """The first of a config's sizes beyond its bound, as '<field> must be …', or None;
    `values` has the Config's fields as attributes."""
    if values.action_delay_steps > MAX_ACTION_DELAY_STEPS:
        return (f"action_delay_steps must be at most {MAX_ACTION_DELAY_STEPS:,} (the observation carries "
                f"that many past actions), got {values.action_delay_steps!r}")
    if values.n_step > MAX_N_STEP:
        return f"n_step must be at most {MAX_N_STEP:,} (rewards gathered per target), got {values.n_step!r}"
    return None
