"""Benchmarked methods behind one interface (:mod:`.base`), registered in :data:`METHODS`.

    input                                   the degraded photo (identity)
    nlm, bilateral, tv, bm3d                classical denoisers (:mod:`.classical`)
    nlm+inpaint, bilateral+inpaint, ...     the same, then OpenCV inpainting of the damage mask (:mod:`.masks`)
    pix2pix, unet, dip                      learned baselines (:mod:`.learned`)
    ours, ours-no-pn                        our pipeline, and its ablation without the partial nonlocal block
"""

from . import classical, learned, ours  # noqa: F401  (register the methods)
from .base import (
    KINDS,
    METHODS,
    Method,
    MethodContext,
    MethodInput,
    MethodUnavailable,
    build_method,
    method_info,
    method_options,
    parse_method_options,
    try_build_method,
)
from .masks import DamageMasks

__all__ = [
    "KINDS", "METHODS", "DamageMasks", "Method", "MethodContext", "MethodInput", "MethodUnavailable",
    "build_method", "method_info", "method_options", "parse_method_options", "try_build_method",
]
