"""What the teaching notebooks (``notebooks/0*.ipynb``) call beyond the pipeline itself.

* :func:`training_data`: the one way a notebook's optional training (``TRAIN = True``) finds its data. It
  returns the user's folder or the shared training sets (``data.splits.TRAIN_SETS`` and friends under
  :func:`~oldphoto_bench.data.shared_data_root`) and raises ``ValueError`` for a test set (the embedded
  scikit-image photos, Kodak24, FFHQ-10 or a copy of one), whatever the recipe: the notebooks never train on
  the photos they test on.
* :func:`start_runs`: a runs folder that starts from the shipped checkpoints a stage needs, so a notebook
  retrains one stage (e.g. the mapping) on top of the shipped others.
* :func:`alignment_encoders` / :func:`compare_encoders`: the encoders whose latent gaps the notebook
  compares (VAE_B's encoder, the shipped VAE_A trained without the latent adversarial loss, the shipped
  VAE_A trained with it) and their R, X, Y latent cells and distances.
* :func:`plot_gap_comparison`: the paper's domain-gap argument (Sec. 3.1, Fig. 3) as one figure: the latent
  cells of real old photos R, synthetic old photos X and clean photos Y under several encoders, projected by
  one linear discriminant analysis (or PCA) fitted on all of them (the encoders compared here share VAE_B's decoder, so their codes live in one
  space), with each panel's Fréchet distance and MMD^2 written beside it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .data.splits import FACE_TRAIN_SETS, OLD_PHOTO_SETS, TRAIN_SETS, check_not_test_set, shared_data_root

# kind -> the shared training sets it means (paths under the shared data root)
# VAE_A trained like the shipped one (same data, seed, steps, VAE_B's frozen decoder) but with
# model.latent_adversarial: false; a runs folder of its own (vae-a/last.pt, provenance.json)
NO_LATENT_ADVERSARIAL_DIR = Path(__file__).resolve().parent / "pretrained" / "tiny-no-latent-adversarial"
TRAINING_KINDS: dict[str, tuple[str, ...]] = {"clean": TRAIN_SETS, "real": OLD_PHOTO_SETS, "faces": FACE_TRAIN_SETS}


def training_data(kind: str = "clean", folder: str | Path | None = None) -> str:
    """The data spec (comma-separated folders) a notebook trains ``kind`` on.

    ``kind``: ``"clean"`` (clean photos aged synthetically: pairs X, Y), ``"real"`` (real old photos R) or
    ``"faces"`` (face photos). ``folder``: the user's own folder(s), comma-separated; ``None``: every set of
    ``TRAINING_KINDS[kind]`` present under the shared data root (``$OLDPHOTO_SHARED_DATA`` or
    ``../shared/data``).

    Raises ``ValueError`` when any part is a test set (``"embedded"``, Kodak24, FFHQ-10 or a copy of one;
    :func:`oldphoto_bench.data.check_not_test_set`), and ``FileNotFoundError`` when a given folder is missing
    or, without ``folder``, no shared training set of that kind exists.
    """
    if kind not in TRAINING_KINDS:
        raise KeyError(f"unknown kind {kind!r}; valid: {', '.join(TRAINING_KINDS)}")
    if folder is not None:
        spec = str(folder)
        check_not_test_set(spec)  # first: "embedded" is no folder, and must still be refused as a test set
        missing = [p for p in (s.strip() for s in spec.split(",")) if p and not Path(p).expanduser().exists()]
        if missing:
            raise FileNotFoundError(f"training data not found: {', '.join(missing)}")
        return spec
    root = shared_data_root()
    found = [str(root / name) for name in TRAINING_KINDS[kind] if root is not None and (root / name).is_dir()]
    if not found:
        where = str(root) if root is not None else "no shared data folder ($OLDPHOTO_SHARED_DATA or ../shared/data)"
        raise FileNotFoundError(f"no {kind} training data: none of {', '.join(TRAINING_KINDS[kind])} under {where}; "
                                "set TRAIN_DATA to your own folder (never a test set)")
    spec = ",".join(found)
    check_not_test_set(spec)
    return spec


def start_runs(runs: str | Path, stages: tuple[str, ...] | list[str], source: str | Path | None = None) -> Path:
    """Create ``runs`` holding copies of ``source``'s (default: the shipped) ``<stage>/`` folders for
    ``stages``, the checkpoints a stage trained into ``runs`` reads (e.g. ``("vae-a", "vae-b", "colour")`` for
    the mapping). Existing folders in ``runs`` are kept. Returns ``runs`` as a ``Path``."""
    from .pretrained import PRETRAINED_DIR

    src, runs = Path(source) if source is not None else PRETRAINED_DIR, Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        if not (runs / stage).exists():
            shutil.copytree(src / stage, runs / stage)
    return runs


def alignment_encoders(device: str = "cpu") -> dict[str, Any]:
    """``{name: VAE}`` for the domain-gap comparison, from no alignment to the paper's: VAE_B's own encoder
    (clean photos only), VAE_A fine-tuned on R and X without the latent adversarial loss
    (:data:`NO_LATENT_ADVERSARIAL_DIR`), and the shipped VAE_A (with it). All three decode with VAE_B's
    decoder, so their codes are comparable."""
    from .pretrained import PRETRAINED_DIR
    from .train.artifacts import load_vae

    return {"VAE_B encoder (no VAE_A)": load_vae(PRETRAINED_DIR, "vae-b", device),
            "VAE_A without latent adversarial": load_vae(NO_LATENT_ADVERSARIAL_DIR, "vae-a", device),
            "VAE_A with latent adversarial": load_vae(PRETRAINED_DIR, "vae-a", device)}


def compare_encoders(encoders: dict[str, Any], real, clean, real_cells: dict[str, np.ndarray] | None = None,
                     size: int = 128, cells_per_image: int = 64, max_images: int = 200, seed: int = 0,
                     device: str = "cpu") -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
    """Latent cells and gaps of R, X, Y under each encoder: ``(features, gaps)`` keyed by encoder name, as
    :func:`oldphoto_bench.latent_gap.encode_domains` and :func:`~oldphoto_bench.latent_gap.latent_gap` give.

    ``real``: a source of real old photos, or ``None``; then ``real_cells[name]`` ((n, C) arrays saved by
    ``benchmarks/latent_gap_alignment.py``) stands in for R where given. ``clean``: the clean photos Y (X is
    Y aged by the ``paper`` preset with seeds derived from ``seed``).
    """
    from .latent_gap import encode_domains, latent_gap

    features, gaps = {}, {}
    for name, vae in encoders.items():
        feats = encode_domains(vae, real, clean, size=size, cells_per_image=cells_per_image, max_images=max_images,
                               seed=seed, device=device)
        if real is None and real_cells is not None and name in real_cells:
            feats = {"R": np.asarray(real_cells[name], dtype=np.float64), **feats}
        features[name], gaps[name] = feats, latent_gap(feats, seed=seed)
    return features, gaps


def plot_gap_comparison(features: dict[str, dict[str, np.ndarray]], gaps: dict[str, dict[str, Any]],
                        max_points: int = 400, seed: int = 0, projection: str = "lda"):
    """One panel per encoder: a shared 2-D projection of the latent cells, coloured by domain, with each
    domain's mean (a large marker) and the encoder's Fréchet / MMD^2 table beside it.

    ``features``: ``{encoder name: {"R": (n, C), "X": (m, C), "Y": (k, C)}}`` (``R`` may be missing), as
    :func:`oldphoto_bench.latent_gap.encode_domains` returns; ``gaps``: ``{encoder name: latent_gap(...)}``.
    ``projection``: ``"lda"`` (linear discriminant analysis on the domain labels: the two directions that
    best separate the domains, which is where a gap shows) or ``"pca"`` (the two directions of largest
    variance, mostly photo content). It is fitted on the cells of every encoder together, so the panels share
    their axes. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from .latent_gap import DOMAIN_COLOURS
    from .seeding import numpy_rng

    rng = numpy_rng(seed)
    shown: dict[str, dict[str, np.ndarray]] = {}
    for name, feats in features.items():
        shown[name] = {k: v[rng.choice(len(v), size=min(max_points, len(v)), replace=False)] for k, v in feats.items()}
    cells = np.concatenate([v for feats in shown.values() for v in feats.values()])
    labels = np.concatenate([[k] * len(v) for feats in shown.values() for k, v in feats.items()])
    if projection == "lda" and len(set(labels)) >= 3:
        proj = LinearDiscriminantAnalysis(n_components=2).fit(cells, labels)
    elif projection in ("lda", "pca"):
        proj = PCA(n_components=2, random_state=seed % 2**32).fit(cells)
        projection = "pca"
    else:
        raise KeyError(f"unknown projection {projection!r}; valid: lda, pca")
    n = len(shown)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 5.4), squeeze=False, sharex=True, sharey=True)
    for ax, (name, feats) in zip(axes[0], shown.items(), strict=True):
        for k, v in feats.items():
            xy = proj.transform(v)
            ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.3, c=DOMAIN_COLOURS.get(k), label=k)
            centre = proj.transform(features[name][k].mean(0, keepdims=True))
            ax.scatter(centre[:, 0], centre[:, 1], s=180, marker="X", c=DOMAIN_COLOURS.get(k), edgecolors="black")
        lines = ["pair  Fréchet   MMD²"]
        for pair, d in gaps[name]["pairs"].items():
            lines.append(f"{pair}  {d['frechet']:.4f}  {d['mmd']:.4f}")
        ax.set_title(name, fontsize=10)
        ax.text(0.02, -0.02, "\n".join(lines), transform=ax.transAxes, va="top", family="monospace", fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(title="domain (X = mean)", markerscale=2.5, loc="upper right")
    fig.suptitle(f"latent cells, one {projection.upper()} projection for all panels", fontsize=11)
    fig.tight_layout()
    return fig
