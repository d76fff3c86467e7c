"""Structured defects: localized damage that comes with a pixel-exact damage mask.

Importing this module registers the ops ``scratches``, ``cracks``, ``creases``, ``dust`` and ``torn`` in
:data:`~oldphoto_bench.degrade.base.OPS`. Each ``apply(image, params)`` returns ``(image, mask)`` with
``mask`` a (1, 1, H, W) bool tensor marking every pixel the op may have changed (its rendered coverage is
positive); no pixel outside the mask changes, bit for bit.

They stand in for the paper's blended scratch textures (Wan et al. 2020, Sec. 4.1: 62 scratch textures
blended with screen / lighten / addition / multiply), which were never released; see the modules below.
"""

from .cracks import Cracks, Creases
from .scratches import Scratches
from .spots import Dust
from .torn import Torn

STRUCTURED_OPS = ("scratches", "cracks", "creases", "dust", "torn")

__all__ = ["Cracks", "Creases", "Dust", "STRUCTURED_OPS", "Scratches", "Torn"]
