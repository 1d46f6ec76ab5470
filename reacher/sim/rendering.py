"""Offscreen OpenGL for MuJoCo, chosen so that rendering works headless.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, so
`select_gl_backend` runs from ``reacher/__init__.py`` before that import. Without
a display it picks EGL, then OSMesa, by which libraries are installed; a user's
own ``MUJOCO_GL`` always wins.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

from reacher.errors import RenderError

_INSTALL_HINT = (
    "install EGL (Debian/Ubuntu: apt install libegl1; with an NVIDIA GPU its driver "
    "provides it) or OSMesa (apt install libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def select_gl_backend() -> str | None:
    """Set ``MUJOCO_GL`` for headless machines; returns the backend chosen, if any."""
    if "MUJOCO_GL" in os.environ or "mujoco" in sys.modules:
        return os.environ.get("MUJOCO_GL")
    if not sys.platform.startswith("linux") or has_display():
        return None  # mujoco's own default (GLFW, or CGL/WGL) works with a display
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            if backend == "osmesa":
                os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
            return backend
    return None


def make_renderer(model, height: int, width: int):
    """A ``mujoco.Renderer``, or a `RenderError` that says what to change: a smaller
    frame when the backend works but not at this size, else what to install."""
    import mujoco

    from reacher.errors import one_line

    # The offscreen buffer is sized from the model: grow it to the frame asked for.
    glob = model.vis.global_
    buffer = (glob.offwidth, glob.offheight)
    glob.offwidth, glob.offheight = max(width, buffer[0]), max(height, buffer[1])
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as err:  # each GL backend fails in its own way
        glob.offwidth, glob.offheight = buffer  # not left at a size that cannot be rendered
        backend = os.environ.get("MUJOCO_GL", "glfw (default)")
        largest = _largest_frame(model)
        if largest is not None:
            limit = f"{largest}×{largest} px at most" if largest else "smaller frames only"
            raise RenderError(
                f"cannot render {width}×{height} px frames offscreen: OpenGL "
                f"(MUJOCO_GL={backend}) works here but renders {limit} ({one_line(err)}); "
                "ask for a smaller width and height") from err
        raise RenderError(
            f"cannot render offscreen with MUJOCO_GL={backend} ({one_line(err)}); "
            + _INSTALL_HINT
        ) from err


_PROBE_PX = 64


def _largest_frame(model) -> int | None:
    """After a failed renderer: None if OpenGL fails at any size (nothing installed),
    else the largest framebuffer side it allows (0 where it cannot be asked)."""
    import mujoco

    try:
        probe = mujoco.Renderer(model, height=_PROBE_PX, width=_PROBE_PX)
    except Exception:
        return None
    try:
        from OpenGL import GL

        probe._gl_context.make_current()  # mujoco keeps its context private
        return int(GL.glGetIntegerv(GL.GL_MAX_RENDERBUFFER_SIZE))
    except Exception:
        return 0
    finally:
        probe.close()
