"""Our method: the restore pipeline (:class:`oldphoto_bench.restore.Restorer`) on checkpoints of ``--checkpoints``.

    ours         VAE_A -> mapping with the partial nonlocal block -> VAE_B; with scratch detection when
                 ``RUNS/scratch/last.pt`` exists (its mask steers the nonlocal block), and face refinement
                 when ``RUNS/face/last.pt`` exists (options ``with_scratch``/``faces`` force either way;
                 ``guide_radius`` 0 turns off the guided filter that ends the global stage, ``detail`` b adds
                 back b of the input's detail layer)
    ours-no-pn   the same pipeline with the mapping of ``RUNS/mapping-no-pn/last.pt``, trained exactly like
                 stage ``mapping`` but without the partial nonlocal block (paper's ablation "w/o PN"):
                     oldphoto-bench train mapping-no-pn --config CONFIG --data DIR --out RUNS
                 Scratch detection and faces as ``ours``: the detected mask is still filled before the
                 translation (``Restorer.mask_fill``), only the block's steering by it is gone. It also needs
                 the VAEs (and ``RUNS/mapping``, which the pipeline checks for).

Missing checkpoints make the method unavailable, with the files and the commands that train them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .base import METHODS, Method, MethodContext, MethodInput, MethodUnavailable

NO_PN_STAGE = "mapping-no-pn"


def _missing_reason(e: Exception) -> str:
    missing = getattr(e, "missing", None)
    if not missing:
        return str(e).splitlines()[0]
    paths = ", ".join(str(p) for _, p, _ in missing)
    commands = list(dict.fromkeys(cmd for _, _, cmd in missing))  # shipped defaults share one retrain command
    return f"missing checkpoint(s) {paths}; train with " + "; ".join(f"`{cmd}`" for cmd in commands)


def _auto(flag: bool | None, stage: str, ctx: MethodContext) -> bool:
    from ...train.artifacts import checkpoint_path

    return checkpoint_path(ctx.checkpoints, stage).is_file() if flag is None else bool(flag)


@METHODS.register("ours")
class Ours(Method):
    name: ClassVar[str] = "ours"
    kind: ClassVar[str] = "ours"
    description: ClassVar[str] = "latent translation with the partial nonlocal block (our restore pipeline)"

    def __init__(self, ctx: MethodContext, with_scratch: bool | None = None, faces: bool | None = None,
                 tile: int | None = None, guide_radius: int | None = None, detail: float = 0.0):
        super().__init__(ctx)
        from ...restore import MissingCheckpointsError, Restorer

        scratch, use_faces = _auto(with_scratch, "scratch", ctx), _auto(faces, "face", ctx)
        try:
            guide = {} if guide_radius is None else {"guide_radius": guide_radius}
            self.restorer = Restorer(ctx.checkpoints, ctx.device, with_scratch=scratch, faces=use_faces, tile=tile,
                                     detail=detail, **guide)
        except MissingCheckpointsError as e:
            raise MethodUnavailable(self.name, _missing_reason(e)) from None
        self.settings = {"checkpoints": str(ctx.checkpoints), "device": ctx.device, "with_scratch": scratch,
                         "faces": use_faces, "tile": tile, "nonlocal_block": bool(self.restorer.mapping.has_nonlocal),
                         "mask_fill": self.restorer.mask_fill if scratch else None,
                         "min_component": self.restorer.min_component if scratch else None,
                         "guide_radius": self.restorer.guide_radius, "guide_eps": self.restorer.guide_eps,
                         "detail": self.restorer.detail,
                         "torn_threshold": self.restorer.torn_threshold,
                         "torn_component_prob": (self.restorer.damage.torn_component_prob
                                                 if self.restorer.torn is not None else None),
                         "notes": list(self.restorer.notes),
                         "weights": checkpoint_digests(ctx.checkpoints, ("vae-a", "vae-b", "colour", "mapping",
                                                                         *(("scratch", "torn") if scratch else ()),
                                                                         *(("face",) if use_faces else ())))}

    def restore(self, item: MethodInput) -> torch.Tensor:
        return self.restorer.restore(item.image).image.float().clamp(0.0, 1.0)


def checkpoint_digests(runs: Any, stages: tuple[str, ...]) -> dict[str, str]:
    """``{stage: sha256 prefix}`` of each stage's checkpoint in ``runs`` (absent ones left out): part of the
    method's settings, so that a retrained stage discards the benchmark's cached outputs."""
    from ...provenance import sha256_file
    from ...train.artifacts import checkpoint_path

    paths = {stage: checkpoint_path(runs, stage) for stage in stages}
    return {stage: sha256_file(path)[:16] for stage, path in paths.items() if path.is_file()}


def load_no_pn_mapping(ctx: MethodContext) -> Any:
    """The mapping of ``RUNS/mapping-no-pn/last.pt`` (frozen, eval, on ``ctx.device``)."""
    from ...models import NETWORKS
    from ...train.artifacts import checkpoint_path
    from ...train.checkpoint import load_checkpoint

    path = checkpoint_path(ctx.checkpoints, NO_PN_STAGE)
    if not path.is_file():
        raise MethodUnavailable("ours-no-pn", f"{path} not found: train it with `oldphoto-bench train "
                                              f"{NO_PN_STAGE} --config CONFIG --data DIR --out {ctx.checkpoints}`")
    ckpt = load_checkpoint(path, map_location=ctx.device)
    if ckpt.get("stage") != NO_PN_STAGE:
        raise ValueError(f"{path} holds stage {ckpt.get('stage')!r}, not {NO_PN_STAGE!r}")
    net = NETWORKS.build(ckpt["specs"]["mapping"])
    net.load_state_dict(ckpt["models"]["mapping"])
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(ctx.device).eval()


@METHODS.register("ours-no-pn")
class OursNoPN(Ours):
    name: ClassVar[str] = "ours-no-pn"
    description: ClassVar[str] = "our pipeline with a mapping trained without the partial nonlocal block (ablation)"

    def __init__(self, ctx: MethodContext, with_scratch: bool | None = None, faces: bool | None = None,
                 tile: int | None = None, guide_radius: int | None = None, detail: float = 0.0):
        mapping = load_no_pn_mapping(ctx)
        super().__init__(ctx, with_scratch=with_scratch, faces=faces, tile=tile, guide_radius=guide_radius,
                         detail=detail)
        if mapping.has_nonlocal:
            raise ValueError(f"{NO_PN_STAGE} checkpoint has a nonlocal block; retrain it with "
                             "model.mapping.nonlocal_block=false")
        if mapping.up[0].in_channels != self.restorer.vae_a.latent_channels:
            raise ValueError(f"the {NO_PN_STAGE} mapping does not fit the VAEs of {ctx.checkpoints}; retrain it "
                             f"with `oldphoto-bench train {NO_PN_STAGE}` on these VAEs")
        from ...train.artifacts import load_output_vae

        self.restorer.mapping = mapping
        self.restorer.vae_b = load_output_vae(ctx.checkpoints, ctx.device, NO_PN_STAGE)  # its decoder, if fine-tuned
        self.settings.update(nonlocal_block=False, mapping=f"{ctx.checkpoints}/{NO_PN_STAGE}/last.pt")
        self.settings["weights"] = {**{k: v for k, v in self.settings["weights"].items() if k != "mapping"},
                                    **checkpoint_digests(ctx.checkpoints, (NO_PN_STAGE,))}
