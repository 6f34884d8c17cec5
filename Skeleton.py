"""The 13-joint pose DeepDance works with, for course code: `from Skeleton import Skeleton`.

The implementation is deepdance/skeleton.py (joints, limbs, normalisation, drawing, skeleton maps).
"""

from deepdance.skeleton import (
    JOINT_NAMES,
    LIMBS,
    N_JOINTS,
    Skeleton,
    body_height,
    draw_skeleton,
    normalize,
    render_maps,
)

__all__ = ["JOINT_NAMES", "LIMBS", "N_JOINTS", "Skeleton", "body_height", "draw_skeleton", "normalize", "render_maps"]
