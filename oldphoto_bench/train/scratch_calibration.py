"""The scratch detector's threshold, calibrated on held-back training photos instead of fixed at 0.4.

A detector that marks edges and hair as scratches makes the partial nonlocal block discard good latent cells,
so the operating point is chosen for a false-positive budget first and for F1 second::

    negatives = crops of the training photos with no structured defect (half untouched, half aged with the
                preset's ageing / unstructured / colour stages: grain, noise, JPEG and paper texture only)
    positives = crops of the same photos aged with the full preset (structured defects with their masks)
    fp(t)     = share of negative pixels with p >= t
    t*        = argmax_t F1(t on positives)  subject to  fp(t) <= max_false_positive

Nothing here sees a test set: the stage calls it on its own ``--data`` with a held-back seed.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from ..data import PairsDataset, collate
from ..degrade import Synthesizer
from ..degrade.presets import load_preset
from ..models import DETECTION_THRESHOLD, to_detector_input
from ..seeding import derive_seed
from ..segmentation_metrics import confusion

CANDIDATES = np.round(np.arange(0.05, 0.995, 0.01), 2)  # thresholds tried (0.05 ... 0.99)
DEFAULT_MAX_FALSE_POSITIVE = 0.005  # 0.5% of undamaged pixels: half of a 1% budget on clean photos


def without_structured(preset: Any) -> dict[str, Any]:
    """The preset's spec with its ``structured`` stage removed (ageing, noise, blur, JPEG, colour kept)."""
    spec = copy.deepcopy(load_preset(preset) if isinstance(preset, str) else dict(preset))
    spec["stages"] = [s for s in spec["stages"] if s.get("name") != "structured"]
    spec["name"] = f"{spec.get('name', 'preset')}-no-structured"
    return spec


@torch.no_grad()
def _probabilities(model: torch.nn.Module, items: list[dict[str, Any]], device: str, batch_size: int = 4
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    probs, masks = [], []
    for s in range(0, len(items), batch_size):
        batch = collate(items[s : s + batch_size])
        x = to_detector_input(batch["degraded"], getattr(model, "in_channels", 1)).to(device)
        probs.append(model.predict_proba(x).float().cpu())
        masks.append(batch["mask"])
    return torch.cat(probs), torch.cat(masks)


def held_back_items(source: Any, preset: Any, n: int, seed: int, crop: int) -> list[dict[str, Any]]:
    """``n`` evaluation-mode pairs (centre crops of ``crop`` px): pass ``k`` over the photos uses the
    :class:`PairsDataset` seeded ``derive_seed(seed, k)``, so more pairs than photos means new damage."""
    items: list[dict[str, Any]] = []
    k = 0
    while len(items) < n:
        ds = PairsDataset(source, preset, crop=crop, train=False, seed=derive_seed(seed, k))
        items.extend(ds[i] for i in range(min(len(ds), n - len(items))))
        k += 1
    return items


@torch.no_grad()
def calibrate_threshold(model: torch.nn.Module, source: Any, preset: Any, n: int = 32, seed: int = 0,
                        crop: int = 128, max_false_positive: float = DEFAULT_MAX_FALSE_POSITIVE,
                        device: str = "cpu") -> dict[str, Any]:
    """Choose the detection threshold (see the module docstring) on ``n`` negative and ``n`` damaged crops.

    Returns ``{"threshold", "false_positive", "f1", "precision", "recall", "max_false_positive",
    "met_budget", "released": {same figures at 0.4}, "images", "crop", "seed"}``. When no candidate meets
    the budget the highest candidate is returned with ``met_budget: False``.
    """
    if not 0 < max_false_positive < 1:
        raise ValueError(f"max_false_positive must be in (0, 1), got {max_false_positive}")
    was_training = model.training
    model.eval()
    try:
        spec = load_preset(preset) if isinstance(preset, str) else preset
        half = max(1, n // 2)
        untouched = held_back_items(source, None, half, derive_seed(seed, 0), crop)
        aged = held_back_items(source, Synthesizer(without_structured(spec)), n - half, derive_seed(seed, 1), crop)
        damaged = held_back_items(source, Synthesizer(spec), n, derive_seed(seed, 2), crop)
        p_neg, _ = _probabilities(model, untouched + aged, device)
        p_pos, m_pos = _probabilities(model, damaged, device)
    finally:
        model.train(was_training)

    def figures(t: float) -> dict[str, float]:
        c = confusion(p_pos, m_pos, t)
        return {"threshold": float(t), "false_positive": float((p_neg >= t).float().mean()),
                "f1": c.f1, "precision": c.precision, "recall": c.recall}

    rows = [figures(float(t)) for t in CANDIDATES]
    ok = [r for r in rows if r["false_positive"] <= max_false_positive]
    best = max(ok, key=lambda r: (r["f1"], -r["threshold"])) if ok else rows[-1]
    return {**best, "max_false_positive": float(max_false_positive), "met_budget": bool(ok),
            "released": figures(DETECTION_THRESHOLD), "images": int(n), "crop": int(crop), "seed": int(seed)}
