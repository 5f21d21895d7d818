"""Fast offscreen rendering of Meta-World scenes for pixels mode (CPU, headless).

Why this module: gymnasium's MuJoCo renderer uses the model's visual defaults (4x multisampling,
4096^2 shadow maps, reflections), about 8 frames/s at 64x64 on a CPU; with those off a 64x64 frame
takes a few milliseconds. Headless GL: ``MUJOCO_GL=egl`` works on this machine (Mesa EGL);
``osmesa`` is not installed. ``MUJOCO_GL`` must be set before ``mujoco`` is first imported, so
:func:`ensure_gl_backend` runs before the lazy simulator import in the adapter.

Meta-World's ``corner*`` cameras are mounted upside down (their image-up axis points down in the
world). :func:`camera_needs_rot180` detects this from the camera pose, and frames from such cameras
are rotated by 180 degrees (a flip of both axes, not a mirror) so that the world's up is image up.
"""

from __future__ import annotations

import os

import numpy as np


def ensure_gl_backend() -> None:
    """Default ``MUJOCO_GL`` to ``egl`` (headless) unless the user chose a backend."""
    os.environ.setdefault("MUJOCO_GL", "egl")


def camera_needs_rot180(data, camera: str) -> bool:
    """True if ``camera``'s image-up axis points downward in the world (an upside-down mount).

    MuJoCo camera frames: x = image right, y = image up, -z = viewing direction (rows of cam_xmat's
    columns). Requires ``mj_forward`` to have run.
    """
    up_world = np.asarray(data.cam(camera).xmat).reshape(3, 3)[:, 1]
    return bool(up_world[2] < 0.0)


def make_fast_renderer(model, size: int):
    """A ``mujoco.Renderer`` [size x size] with shadows, reflections, skybox and MSAA disabled."""
    import mujoco

    model.vis.quality.offsamples = 0
    model.vis.quality.shadowsize = 0
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
    renderer = mujoco.Renderer(model, size, size)
    flags = renderer.scene.flags
    flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
    return renderer


def render_camera(renderer, data, camera: str, rot180: bool) -> np.ndarray:
    """One frame uint8 [H, W, 3] from ``camera``, rotated upright if the mount is upside down."""
    renderer.update_scene(data, camera=camera)
    img = renderer.render()
    if rot180:
        img = img[::-1, ::-1]
    return np.ascontiguousarray(img, dtype=np.uint8)
