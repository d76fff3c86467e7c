"""The latent domain gap: how far apart real old photos R, synthetic old photos X and clean photos Y lie in
the shared latent space of VAE_A (paper Sec. 3.1, Fig. 3).

All three domains are encoded with VAE_A's encoder (its posterior means), so R-X measures how well the
latent adversarial loss aligned real and synthetic degradation, and X-Y / R-Y how much the degradation
itself moves the latents. Each image contributes ``cells_per_image`` latent cells (64-d vectors) drawn at
seeded random positions; distances between the domains' cell sets are the Fréchet distance and the
unbiased RBF-kernel MMD^2 (median-heuristic bandwidth) from :mod:`oldphoto_bench.stats`, plus the Fréchet
distance relative to the sets' mean total variance (``frechet_relative``), which is comparable across models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .seeding import derive_seed, numpy_rng
from .stats import frechet_distance_sets, mmd2_unbiased

PAIRS = (("R", "X"), ("X", "Y"), ("R", "Y"))
DOMAIN_COLOURS = {"R": "tab:red", "X": "tab:orange", "Y": "tab:blue"}


def prepare(image: torch.Tensor, size: int, multiple: int = 4) -> torch.Tensor:
    """Resize (1, 3, H, W) so the shorter side is ``size``, then centre-crop to ``size x size``
    (rounded down to ``multiple``)."""
    h, w = image.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = F.interpolate(image, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    c = size - size % multiple
    top, left = (nh - c) // 2, (nw - c) // 2
    return x[..., top : top + c, left : left + c]


@torch.no_grad()
def latent_cells(encode: Callable[[torch.Tensor], torch.Tensor], images: list[torch.Tensor], cells_per_image: int,
                 seed: int, device: str | torch.device = "cpu", progress: bool = False,
                 desc: str = "encode") -> np.ndarray:
    """Encode each (1, 3, h, w) image to (1, C, h', w') and draw ``cells_per_image`` cells -> (n, C) array.

    ``progress``: a progress bar on stderr labelled ``desc``."""
    from tqdm import tqdm

    out = []
    for i, img in enumerate(tqdm(images, desc=desc, unit="img", disable=not progress)):
        z = encode(img.to(device)).float().cpu()[0]  # (C, h', w')
        flat = z.flatten(1).T.numpy()  # (h'*w', C)
        rng = numpy_rng(derive_seed(seed, i))
        k = min(cells_per_image, len(flat))
        out.append(flat[rng.choice(len(flat), size=k, replace=False)])
    return np.concatenate(out).astype(np.float64)


@torch.no_grad()
def encode_domains(vae, real, clean, preset: str = "paper", size: int = 128, cells_per_image: int = 64,
                   max_images: int = 200, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = False) -> dict[str, np.ndarray]:
    """Latent cells of R (``real`` source, may be None), X (``clean`` aged with ``preset``, seed
    ``derive_seed(seed, i)`` for image i) and Y (``clean``), all encoded with ``vae``'s posterior mean.

    Images are resized and centre-cropped to ``size`` (:func:`prepare`). Returns {"R": (n, C), "X": ..., "Y": ...}.
    ``progress``: progress bars on stderr while loading, ageing and encoding.
    """
    from tqdm import tqdm

    from .degrade import Synthesizer

    def take(src, what):
        n = min(len(src), max_images)
        return [prepare(src[i].image, size) for i in tqdm(range(n), desc=f"load {what}", unit="img",
                                                          disable=not progress)]

    synth = Synthesizer(preset)
    y_imgs = take(clean, "Y")
    domains = {"R": take(real, "R") if real is not None else None, "X": None, "Y": y_imgs}
    domains["X"] = [synth(y, derive_seed(seed, i)).image
                    for i, y in enumerate(tqdm(y_imgs, desc="age X", unit="img", disable=not progress))]

    def encode(x: torch.Tensor) -> torch.Tensor:
        return vae.encode(x)[0]

    return {k: latent_cells(encode, imgs, cells_per_image, seed=derive_seed(seed, j), device=device,
                            progress=progress, desc=f"encode {k}")
            for j, (k, imgs) in enumerate(domains.items()) if imgs is not None}


def gap_between(a: np.ndarray, b: np.ndarray, max_mmd_points: int = 1000, seed: int = 0) -> dict[str, float]:
    """Fréchet distance and MMD^2 between two (n, C) sets (MMD on at most ``max_mmd_points`` per set)."""
    rng = numpy_rng(seed)

    def sub(x: np.ndarray) -> np.ndarray:
        return x[rng.choice(len(x), size=max_mmd_points, replace=False)] if len(x) > max_mmd_points else x

    fd = frechet_distance_sets(a, b)
    # Scale-free companion: the distance over the mean total variance of the two sets, so models whose
    # latents have different magnitudes (e.g. with and without the latent adversarial loss) can be compared.
    scale = 0.5 * (np.var(a, axis=0, ddof=1).sum() + np.var(b, axis=0, ddof=1).sum())
    return {"frechet": fd, "mmd": mmd2_unbiased(sub(a), sub(b), kernel="rbf"),
            "frechet_relative": float(fd / scale) if scale > 0 else float("nan")}


def latent_gap(features: dict[str, np.ndarray], seed: int = 0) -> dict[str, Any]:
    """``features``: {"R": (n, C), "X": (m, C), "Y": (k, C)} -> ``{"pairs": {"R-X": {...}, ...}, "n": {...}}``.

    Pairs with a missing domain are left out.
    """
    pairs = {f"{a}-{b}": gap_between(features[a], features[b], seed=seed)
             for a, b in PAIRS if a in features and b in features}
    return {"pairs": pairs, "n": {k: int(len(v)) for k, v in features.items()}}


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'pair':<6} {'frechet':>12} {'mmd':>12} {'frechet/var':>12}"]
    for name, d in result["pairs"].items():
        lines.append(f"{name:<6} {d['frechet']:>12.4f} {d['mmd']:>12.5f} {d.get('frechet_relative', float('nan')):>12.4f}")
    return "\n".join(lines)


def plot_embedding(features: dict[str, np.ndarray], path: str | Path | None = None, max_points: int = 600,
                   seed: int = 0):
    """PCA and t-SNE of the latent cells, coloured by domain; saved to ``path`` when given. Returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = numpy_rng(seed)
    names, chunks = [], []
    for k, v in features.items():
        idx = rng.choice(len(v), size=min(max_points, len(v)), replace=False)
        chunks.append(v[idx])
        names += [k] * len(idx)
    x = np.concatenate(chunks)
    labels = np.array(names)
    pca = PCA(n_components=2, random_state=seed % 2**32).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca",
                random_state=seed % 2**32).fit_transform(x)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, emb, title in ((axes[0], pca, "PCA"), (axes[1], tsne, "t-SNE")):
        for k in features:
            sel = labels == k
            ax.scatter(emb[sel, 0], emb[sel, 1], s=6, alpha=0.6, c=DOMAIN_COLOURS.get(k), label=k)
        ax.set_title(f"{title} of VAE_A latent cells")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(title="domain", markerscale=3)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig
