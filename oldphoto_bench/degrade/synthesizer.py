"""The seeded, replayable degradation synthesizer.

A *preset* is a list of stages; each stage is a list of groups; a group fires with probability ``p`` and then
applies all of its ``ops`` in order, or one op drawn from its ``choice`` list. A stage with
``shuffle: true`` visits its groups in a random order (as the released code's
``online_add_degradation_v2`` does for blur / noise / low resolution / JPEG)::

    stages:
      - shuffle: true
        groups:
          - {p: 0.7, ops: [{type: gaussian_blur}]}
          - {p: 0.7, choice: [{type: gaussian_noise}, {type: speckle_noise}, {type: salt_pepper}]}

Sampling is split from application: ``plan(seed, H, W)`` draws a JSON *record* from the seed alone, and
``replay(image, record)`` applies it deterministically. ``synth(image, seed) == replay(image, plan(seed))``,
the same seed gives the same bytes, and a batch of N equals N single calls.

Record shape::

    {"version": 1, "seed": 0, "preset": "paper", "size": [H, W],
     "ops": [{"type": "scratches", "params": {...}}, ...]}
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..seeding import check_seed, numpy_rng
from .base import OPS, DegradationOp, check_image

RECORD_VERSION = 1


@dataclass
class Degraded:
    """Result of one synthesizer call.

    image:  (N, 3, H, W) float32 in [0, 1]
    mask:   (N, 1, H, W) float32 in {0, 1}: union of the structured defects' damage masks
    records: one JSON-serializable record per image
    """

    image: torch.Tensor
    mask: torch.Tensor
    records: list[dict[str, Any]]


class _Group:
    def __init__(self, spec: Mapping[str, Any]):
        unknown = set(spec) - {"p", "ops", "choice", "weights", "name"}
        if unknown:
            raise KeyError(f"unknown preset group keys {sorted(unknown)}; valid: p, ops, choice, weights, name")
        if ("ops" in spec) == ("choice" in spec):
            raise ValueError(f"a preset group needs exactly one of 'ops' or 'choice', got {dict(spec)}")
        from .limits import build_checked

        p = spec.get("p", 1.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"group probability p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.all = "ops" in spec
        ops = spec.get("ops") or spec.get("choice")
        if not isinstance(ops, list) or not ops:
            raise ValueError(f"a group's 'ops' or 'choice' must be a non-empty list of ops, got {ops!r}")
        self.ops: list[DegradationOp] = [build_checked(c) for c in ops]
        w = spec.get("weights")
        if w is not None and (self.all or not isinstance(w, list) or len(w) != len(self.ops)):
            raise ValueError("'weights' goes with 'choice' and needs one weight per op")
        if w is not None and not (all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < math.inf
                                      for x in w) and sum(w) > 0):
            raise ValueError(f"'weights' must be numbers >= 0 with a positive sum (one per op), got {w!r}")
        self.weights = None if w is None else [float(x) / sum(w) for x in w]
        self.spec = dict(spec)


class Synthesizer:
    """Degrade clean photos with a preset; every output comes with its damage mask and a replayable record.

    Args:
        preset: a shipped preset name (``unstructured``, ``paper``, ``light``, ``heavy``), a path to a YAML
            preset, or a preset mapping (see the module docstring).
    """

    def __init__(self, preset: str | Mapping[str, Any] = "paper"):
        from .presets import load_preset

        spec = load_preset(preset) if not isinstance(preset, Mapping) else copy.deepcopy(dict(preset))
        self.name = str(spec.get("name", preset if isinstance(preset, str) else "custom"))
        self.spec = spec
        self.stages: list[tuple[bool, list[_Group]]] = []
        try:
            if not isinstance(spec.get("stages", []), list):
                raise ValueError(f"'stages' must be a list of stages, got {spec.get('stages')!r}")
            for st in spec.get("stages", []):
                if not isinstance(st, Mapping):
                    raise ValueError(f"a preset stage must be a mapping with 'groups', got {st!r}")
                unknown = set(st) - {"shuffle", "groups", "name"}
                if unknown:
                    raise KeyError(f"unknown preset stage keys {sorted(unknown)}; valid: shuffle, groups, name")
                groups = st.get("groups", [])
                if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
                    raise ValueError(f"a preset stage's 'groups' must be a list of mappings, got {groups!r}")
                self.stages.append((bool(st.get("shuffle", False)), [_Group(g) for g in groups]))
        except (KeyError, ValueError) as e:  # say which preset (the message already names op and parameter)
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise type(e)(f"preset {self.name}: {msg}") from None

    @classmethod
    def single(cls, op: str | Mapping[str, Any]) -> Synthesizer:
        """A synthesizer that always applies one op, e.g. ``Synthesizer.single({"type": "scratches",
        "count": [3, 3]})``: handy to look at, or sweep, one operation alone."""
        cfg = {"type": op} if isinstance(op, str) else dict(op)
        return cls({"name": f"single:{cfg['type']}", "stages": [{"groups": [{"p": 1.0, "ops": [cfg]}]}]})

    # ---- sampling -------------------------------------------------------------------------------------------
    def plan(self, seed: int, height: int, width: int) -> dict[str, Any]:
        """Draw the record for ``seed`` and an image of ``height x width`` (no pixels are touched)."""
        seed = check_seed(seed)
        rng = numpy_rng(seed)
        ops: list[dict[str, Any]] = []
        for shuffle, groups in self.stages:
            order = rng.permutation(len(groups)) if shuffle else range(len(groups))
            for gi in order:
                g = groups[int(gi)]
                if rng.random() >= g.p:
                    continue
                if g.all:
                    chosen = g.ops
                else:
                    chosen = [g.ops[int(rng.choice(len(g.ops), p=g.weights))]]
                for op in chosen:
                    ops.append({"type": op.name, "config": op.config(), "params": op.sample(rng, height, width)})
        return {"version": RECORD_VERSION, "seed": seed, "preset": self.name, "size": [int(height), int(width)],
                "ops": ops}

    # ---- application ----------------------------------------------------------------------------------------
    @staticmethod
    def replay(image: torch.Tensor, record: Mapping[str, Any]) -> Degraded:
        """Apply a record to ``image`` (1, 3, H, W); reproduces the original output bit for bit."""
        check_image(image)
        if image.shape[0] != 1:
            raise ValueError("replay takes one image (1, 3, H, W); use replay_batch for several")
        h, w = image.shape[-2:]
        if list(record.get("size", [h, w])) != [h, w]:
            raise ValueError(f"record was planned for size {record['size']}, image is {[h, w]}")
        out = image
        mask = torch.zeros((1, 1, h, w), dtype=torch.bool, device=image.device)
        for entry in record["ops"]:
            op = OPS.build(entry.get("config", {"type": entry["type"]}))
            out, m = op.apply(out, entry["params"])
            if m is not None:
                mask |= m
        # out-of-place: with no op fired, ``out`` is the caller's tensor, which must not be aliased or modified
        return Degraded(out.clamp(0.0, 1.0), mask.float(), [dict(record)])

    @classmethod
    def replay_batch(cls, images: torch.Tensor, records: Sequence[Mapping[str, Any]]) -> Degraded:
        """Replay one record per image of a (N, 3, H, W) batch."""
        check_image(images)
        if len(records) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(records)} records")
        outs = [cls.replay(images[i : i + 1], r) for i, r in enumerate(records)]
        return Degraded(torch.cat([o.image for o in outs]), torch.cat([o.mask for o in outs]),
                        [o.records[0] for o in outs])

    def __call__(self, images: torch.Tensor, seed: int | Sequence[int]) -> Degraded:
        """Degrade a batch. ``seed``: one int per image (a single int is allowed for a single image)."""
        check_image(images)
        seeds = [seed] if isinstance(seed, int) else list(seed)
        if len(seeds) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images need {images.shape[0]} seeds, got {len(seeds)}")
        h, w = images.shape[-2:]
        return self.replay_batch(images, [self.plan(s, h, w) for s in seeds])
