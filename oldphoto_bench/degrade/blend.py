"""Layer blend modes on tensors in ``[0, 1]`` and an alpha-compositing helper.

The paper (Wan et al. 2020, Sec. 4.1) overlays scratch and paper textures on clean photos "with random
blending modes: screen, lighten, addition and multiply" (plus the usual ones here for the ageing ops).
With ``a`` the base image and ``b`` the layer, both broadcastable tensors in ``[0, 1]``:

==========  ======================================================
normal      ``b``                                   (plain alpha compositing)
addition    ``min(a + b, 1)``                       (linear dodge)
screen      ``1 - (1 - a) (1 - b)``
lighten     ``max(a, b)``
multiply    ``a b``
darken      ``min(a, b)``
overlay     ``2 a b`` where ``a < 0.5``, else ``1 - 2 (1 - a)(1 - b)``
==========  ======================================================

:func:`blend` composites a layer with coverage ``alpha`` in ``[0, 1]``:
``out = a (1 - alpha) + mode(a, b) alpha``. Where ``alpha == 0`` the result equals ``a`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..registry import Registry

BlendFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

BLEND_MODES = Registry("blend mode")


@BLEND_MODES.register("normal")
def normal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``b``: the layer replaces the base (where ``alpha`` is 1)."""
    return torch.broadcast_tensors(a, b)[1]  # (broadcast_shapes would import sympy: slow first call)


@BLEND_MODES.register("addition")
def addition(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``min(a + b, 1)`` (a.k.a. linear dodge)."""
    return (a + b).clamp(max=1.0)


@BLEND_MODES.register("screen")
def screen(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - (1 - a)(1 - b)``: always at least as bright as either input."""
    return 1.0 - (1.0 - a) * (1.0 - b)


@BLEND_MODES.register("lighten")
def lighten(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``max(a, b)`` per channel."""
    return torch.maximum(a, b)


@BLEND_MODES.register("multiply")
def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a b``: always at most as bright as either input."""
    return a * b


@BLEND_MODES.register("darken")
def darken(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``min(a, b)`` per channel."""
    return torch.minimum(a, b)


@BLEND_MODES.register("overlay")
def overlay(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Multiply in the base's shadows, screen in its highlights: ``2ab`` if ``a < 0.5`` else
    ``1 - 2(1 - a)(1 - b)``."""
    return torch.where(a < 0.5, 2.0 * a * b, 1.0 - 2.0 * (1.0 - a) * (1.0 - b))


def blend_mode(mode: str | BlendFn) -> BlendFn:
    """A blend function by name (unknown names raise ``KeyError`` listing the valid ones) or as given."""
    return BLEND_MODES.get(mode) if isinstance(mode, str) else mode


def blend(base: torch.Tensor, layer: torch.Tensor, alpha: torch.Tensor | float, mode: str | BlendFn) -> torch.Tensor:
    """Composite ``layer`` over ``base`` with ``mode`` and coverage ``alpha``.

    ``out = base (1 - alpha) + mode(base, layer) alpha``, all broadcastable, values in ``[0, 1]``
    (e.g. base ``(1, 3, H, W)``, layer ``(1, 3, 1, 1)`` or ``(1, 3, H, W)``, alpha ``(1, 1, H, W)``).
    The result is clamped to ``[0, 1]`` against rounding.
    """
    mixed = blend_mode(mode)(base, layer)
    return (base * (1.0 - alpha) + mixed * alpha).clamp(0.0, 1.0)
