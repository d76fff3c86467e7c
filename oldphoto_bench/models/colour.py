"""A global colour correction predicted from a thumbnail of the whole photo (the first step of ``tiny``).

Fading, yellowing, sepia and contrast shifts act on the whole print; on this project's Kodak24 benchmark they
are about 63% of the aged input's squared error, and a per-channel affine colour match to the clean photo
alone lifts the input from 19.2 to 22.5 dB. The latent mapping, trained on small crops, sees too little of
the photo to undo them, so a small network looks at the whole photo and predicts one affine map of RGB::

    t      = thumbnail(x)                      (N, 3, s, s), area-averaged (s = 64)
    f      = [pool(CNN(t)), statistics(t)]     (n_down = 0: no CNN, pool(t) is the channel means)
    [A|b]  = identity + MLP(standardise(f))                         (N, 3, 4)
    x'     = clamp(A x + b, 0, 1)              every pixel of the full-resolution photo

No normalisation inside the CNN: absolute colour is what it must see. ``standardize`` rescales each feature
of ``f`` to zero mean and unit variance over the training photos (a BatchNorm without affine parameters,
frozen in eval mode), so the statistics, which differ by orders of magnitude in spread, weigh alike. The
MLP's last layer starts at zero, so the correction starts as the identity.

With ``levels`` (off in the shipped recipe: measured, it recolours photos that need nothing) the net sees the
thumbnail after per-channel auto levels (:func:`levels_affine`; targets 0.04 / 0.93, about the median 0.5% /
99.5% quantiles of the training photos, averaged over the channels) plus the statistics from before it, and
its map is composed with the levels map, so the correction starts at auto levels instead of the identity.
With ``edge_stats`` (off in the shipped recipe: measured, no gain on held-out photos) the features also hold
the gray-edge statistics of colour constancy (:func:`edge_statistics`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..seeding import derive_seed, torch_generator
from .blocks import init_weights_, mark_zero_init


def thumbnail(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, 3, H, W)`` -> ``(N, 3, size, size)``: area average (antialiased bilinear where the photo is smaller)."""
    h, w = image.shape[-2:]
    if h >= size and w >= size:
        return F.adaptive_avg_pool2d(image, size)
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def apply_colour(image: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """``clamp(A x + b)`` per photo: ``image`` (N, 3, H, W), ``affine`` (N, 3, 4) -> (N, 3, H, W) in [0, 1]."""
    out = torch.einsum("nij,njhw->nihw", affine[:, :, :3], image) + affine[:, :, 3, None, None]
    return out.clamp(0.0, 1.0)


def fit_colour(source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
               ridge: float = 1e-3) -> torch.Tensor:
    """The least-squares affine colour map from ``source`` to ``target``, per photo -> ``(N, 3, 4)``.

    ``source``, ``target``: ``(N, 3, H, W)``; ``weight``: ``(N, 1, H, W)`` >= 0 (None: all ones), e.g. 0 on
    damaged pixels so that a white scratch does not pull the fit. With ``u = [x, 1]`` the pixel colours of
    ``source`` and ``p`` the pixel count, the map ``[A | b]`` minimises::

        sum_pixels w |A x + b - y|^2  +  ridge * p * |A - I|^2

    (the ridge pulls ``A`` towards the identity, so a flat crop keeps its contrast; ``b`` gets a 1000 times
    weaker pull to 0, so a fully masked crop still has a solution). Closed form:
    ``[A | b]^T = (U^T W U + R)^-1 (U^T W Y + R [I; 0])``, ``R = ridge * p * diag(1, 1, 1, 1e-3)``, solved (pseudo-inverse)
    in double precision and returned in ``source``'s float dtype.
    """
    n, _, h, w = source.shape
    dev, f64 = source.device, torch.float64  # the normal equations in double precision
    u = torch.cat([source.to(f64).flatten(2), torch.ones(n, 1, h * w, dtype=f64, device=dev)], 1)  # (N, 4, P)
    y = target.to(f64).flatten(2)                                                    # (N, 3, P)
    wt = torch.ones(n, 1, h * w, dtype=f64, device=dev) if weight is None else weight.to(f64).flatten(2)
    gram = torch.einsum("nip,njp->nij", u * wt, u)                                  # (N, 4, 4)
    cross = torch.einsum("nip,njp->nij", u * wt, y)                                 # (N, 4, 3)
    r = ridge * h * w * torch.diag(torch.tensor([1.0, 1.0, 1.0, 1e-3], dtype=f64, device=dev))
    # pseudo-inverse: a grayscale source (equal channels) makes the system singular without the ridge; its
    # minimum-norm solution is numpy's lstsq's
    coef = torch.linalg.pinv(gram + r, hermitian=True) @ (cross + r @ torch.eye(4, 3, dtype=f64, device=dev))
    coef = coef.to(source.dtype if source.is_floating_point() else torch.float32)
    return coef.transpose(1, 2).contiguous()


def levels_affine(t: torch.Tensor, quantiles: tuple[float, float], targets: tuple[float, float],
                  min_spread: float = 0.2) -> torch.Tensor:
    """Per-channel "auto levels" as an affine map ``(N, 3, 4)``: each channel's ``quantiles`` (low, high) of
    ``t`` ``(N, 3, h, w)`` are sent to the shared ``targets`` (low, high)::

        a_c = (hi_t - lo_t) / max(q_hi,c - q_lo,c, min_spread),    b_c = lo_t - a_c q_lo,c

    Fading lifts the black point and yellowing lowers one channel's white point; the map undoes both up to
    the photo's own range (``min_spread`` caps the gain of a nearly flat channel)."""
    q = torch.quantile(t.flatten(2).float(), torch.tensor(quantiles, dtype=torch.float32, device=t.device), dim=-1)
    lo, hi = q[0], q[1]                                                              # (N, 3) each
    gain = (float(targets[1]) - float(targets[0])) / (hi - lo).clamp(min=float(min_spread))
    affine = torch.zeros(t.shape[0], 3, 4, dtype=torch.float32, device=t.device)
    affine[:, :, :3] = torch.diag_embed(gain)
    affine[:, :, 3] = float(targets[0]) - gain * lo
    return affine


def compose_affine(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 4)`` maps -> the map of ``outer(inner(x))`` (before any clamp): ``[A_o A_i | A_o b_i + b_o]``."""
    a = outer[:, :, :3] @ inner[:, :, :3]
    b = (outer[:, :, :3] @ inner[:, :, 3:]).squeeze(-1) + outer[:, :, 3]
    return torch.cat([a, b[..., None]], dim=-1)


QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
N_STATISTICS = 3 * (2 + len(QUANTILES)) + 3


def colour_statistics(t: torch.Tensor) -> torch.Tensor:
    """``(N, 3, h, w)`` -> ``(N, 30)``: per channel mean, std and the :data:`QUANTILES` (black and white
    points, the spread that fading and contrast shifts change), then the three channel correlations (low
    after yellowing or sepia's tint, 1 for a grayscale photo)."""
    flat = t.flatten(2)
    mean, std = flat.mean(-1), flat.std(-1, unbiased=False)
    q = torch.quantile(flat, torch.tensor(QUANTILES, dtype=flat.dtype, device=flat.device), dim=-1)  # (Q, N, 3)
    centred = (flat - mean[..., None]) / (std[..., None] + 1e-4)
    corr = torch.stack([(centred[:, i] * centred[:, j]).mean(-1) for i, j in ((0, 1), (1, 2), (0, 2))], dim=1)
    return torch.cat([mean, std, q.permute(1, 0, 2).flatten(1), corr], dim=1)


def colour_histograms(t: torch.Tensor, bins: int) -> torch.Tensor:
    """``(N, 3, h, w)`` in [0, 1] -> ``(N, 3 * bins)``: each channel's histogram over ``bins`` equal bins of
    [0, 1], as shares of the pixels (where the mass sits tells a lifted black or a tint apart)."""
    n, c = t.shape[:2]
    idx = (t.flatten(2).clamp(0.0, 1.0) * bins).long().clamp_(max=bins - 1)         # (N, 3, P)
    counts = torch.zeros(n, c, bins, dtype=t.dtype, device=t.device).scatter_add_(2, idx, torch.ones_like(t.flatten(2)))
    return (counts / idx.shape[-1]).flatten(1)


EDGE_NORMS = (1.0, 6.0)
EDGE_SCALES = (1, 2)
N_EDGE_STATISTICS = 2 * 3 * len(EDGE_NORMS) * len(EDGE_SCALES)


def edge_statistics(t: torch.Tensor) -> torch.Tensor:
    """``(N, 3, h, w)`` -> ``(N, 24)``: the gray-edge statistics of colour constancy (van de Weijer, Gevers &
    Gijsenij 2007: the mean colour of a scene's edges is close to achromatic, a better estimate of a cast
    than the mean colour of its pixels). For each scale ``k`` of :data:`EDGE_SCALES` (``t`` average-pooled by
    ``k``) and Minkowski norm ``p`` of :data:`EDGE_NORMS`, per channel ``c``::

        e_c = ( mean_pixels |grad t_c|^p )^(1/p),   |grad t_c| = sqrt(dx^2 + dy^2) (forward differences)

    then the same three values divided by their sum (the edges' chromaticity, free of the photo's contrast).
    A cast such as yellowing scales one channel's edges as much as its pixels; fading scales all three."""
    feats = []
    for k in EDGE_SCALES:
        x = F.avg_pool2d(t, k) if k > 1 else t
        dx, dy = x[..., :-1, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, :-1]
        grad = torch.sqrt(dx * dx + dy * dy + 1e-12).flatten(2)                        # (N, 3, P)
        for p in EDGE_NORMS:
            e = grad.pow(p).mean(-1).pow(1.0 / p)                                       # (N, 3)
            feats += [e, e / e.sum(1, keepdim=True).clamp(min=1e-6)]
    return torch.cat(feats, dim=1)


class GlobalColourNet(nn.Module):
    """``forward(image)`` -> ``(N, 3, 4)`` affine colour maps; :meth:`correct` applies them.

    ``image``: ``(N, 3, H, W)`` float in [0, 1], any size (the network sees a ``size`` x ``size`` thumbnail).
    """

    def __init__(self, size: int = 64, base_channels: int = 16, hidden: int = 64, n_down: int = 4,
                 histogram_bins: int = 0, standardize: bool = False, head_layers: int = 1, init_seed: int = 0,
                 levels: bool = False, levels_quantiles: tuple[float, float] = (0.005, 0.995),
                 levels_targets: tuple[float, float] = (0.04, 0.93), edge_stats: bool = False):
        super().__init__()
        self.edge_stats = bool(edge_stats)
        self.size = int(size)
        self.levels = bool(levels)
        self.levels_quantiles = (float(levels_quantiles[0]), float(levels_quantiles[1]))
        self.levels_targets = (float(levels_targets[0]), float(levels_targets[1]))
        if not 0.0 <= self.levels_quantiles[0] < self.levels_quantiles[1] <= 1.0:
            raise ValueError(f"levels_quantiles must be (lo, hi) with 0 <= lo < hi <= 1, got {levels_quantiles}")
        self.histogram_bins = int(histogram_bins)
        layers: list[nn.Module] = []
        cin = 3
        for i in range(n_down):
            cout = base_channels * 2 ** min(i, 2)
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        # with levels the statistics of the photo before levels come too: the net must see whether the
        # stretch was needed (a faded print) or made a tint of a photo's own strong colours
        n_features = (cin + N_STATISTICS * (2 if self.levels else 1) + 3 * self.histogram_bins
                      + N_EDGE_STATISTICS * self.edge_stats)
        if int(head_layers) < 1:
            raise ValueError(f"head_layers must be >= 1, got {head_layers}")
        self.standardize = nn.BatchNorm1d(n_features, affine=False) if standardize else nn.Identity()
        head: list[nn.Module] = []
        for i in range(int(head_layers)):
            head += [nn.Linear(n_features if i == 0 else hidden, hidden), nn.LeakyReLU(0.2, inplace=True)]
        self.head = nn.Sequential(*head, mark_zero_init(nn.Linear(hidden, 12)))
        self.register_buffer("identity", torch.eye(3, 4), persistent=False)
        init_weights_(self, init_seed)
        if standardize:
            # unit-variance features: LeCun-normal hidden layers (std 1 / sqrt(fan_in)) keep the activations'
            # scale; pix2pixHD's N(0, 0.02) left them ~0.1 and trained slower (mean gain on held-out aged
            # photos after 2000 steps, McMaster, deepface and 80 BSDS500 photos: 0.94 vs 1.02 dB)
            gen = torch_generator(derive_seed(init_seed, 1))
            for m in self.head:
                if isinstance(m, nn.Linear) and not getattr(m, "zero_init", False):
                    m.weight.data.copy_(torch.empty(m.weight.shape).normal_(0.0, m.in_features ** -0.5, generator=gen))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        t = thumbnail(image.float(), self.size)
        start, extra = None, []
        if self.levels:
            # the net corrects the levels-stretched photo: its map starts at auto levels, not at the identity
            start = levels_affine(t, self.levels_quantiles, self.levels_targets)
            extra = [colour_statistics(t)]
            t = apply_colour(t, start)
        pooled = self.features(t).mean(dim=(2, 3))
        stats = colour_statistics(t)
        if self.histogram_bins:
            stats = torch.cat([stats, colour_histograms(t, self.histogram_bins)], dim=1)
        if self.edge_stats:
            stats = torch.cat([stats, edge_statistics(t)], dim=1)
        features = self.standardize(torch.cat([pooled, stats, *extra], dim=1))
        affine = self.identity + self.head(features).view(-1, 3, 4)
        return affine if start is None else compose_affine(affine, start)

    def correct(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (N, 3, H, W) -> the colour-corrected photo, same shape, in [0, 1]."""
        return apply_colour(image, self(image))
