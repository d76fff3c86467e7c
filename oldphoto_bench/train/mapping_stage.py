"""Stage ``mapping``: the latent translation T from VAE_A's latent space to VAE_B's (paper Sec. 3.3, Eq. 6).

VAE_A and VAE_B come frozen from ``runs/vae-a/last.pt`` and ``runs/vae-b/last.pt``. On synthetic pairs
(X = aged crop, Y = its clean crop, M = damage mask)::

    x   = C(x)                                             with data.colour_correct: RUNS/colour, frozen
    y   = fit(y -> x) y                                    with data.mapping_target: input-colour (below)
    z_x = mu_A(x),  z_y = mu_B(y)                          posterior means, no sampling, no gradients
    valid = latent_valid_from_mask(M)                      only with model.mapping.nonlocal_block: true
    z'  = T(z_x, valid);  y' = G_B(z')                     G_B frozen, gradients flow through it into T
    L_T = w_lat * |z' - z_y|_1 + w_img * |y' - y|_1 + w_ssim * (1 - SSIM(y', y))
          + w_gan * L_GAN(D(y'), 1) + FM(D(y'), D(y)) [+ w_vgg * VGG(y', y)]
    L_D = 0.5 * (L(D(y), 1) + L(D(y'), 0))

``data.mapping_target``: ``clean`` (the paper) or ``input-colour``: the clean crop recoloured by the
least-squares affine map from it to the (colour-corrected) input over the undamaged pixels
(:func:`~oldphoto_bench.models.colour.fit_colour`). The mapping is then taught structure only (noise, blur,
defects) and leaves global colour to the colour stage, instead of spending its loss on a colour it cannot
see from a crop.

``data.mapping_mask``: ``ground-truth`` (default) passes the synthesizer's whole damage mask to the nonlocal
block, over an unfilled crop. ``partial`` trains on what ``restore --with-scratch`` gives the mapping: each
component of the mask of at least ``MIN_COMPONENT`` pixels is kept with probability ``data.mapping_mask_keep``
(the detector finds some of the damage, and nothing smaller than its component filter), the kept ones are
filled by Telea inpainting as restore fills them (:func:`~oldphoto_bench.restore.inpaint.fill_mask`) and
only they steer the nonlocal block; the damage left over stays in the crop for the mapping to remove.

``w_lat`` is the paper's lambda_1 = 60 (``loss.mapping_latent_l1``). The paper's loss has no image L1
(``loss.mapping_image_l1: 0`` in the paper config) and no SSIM term (``loss.mapping_image_ssim``, the
benchmark's SSIM); the small recipes add them to converge in minutes and measured better with them.
``loss.mapping_image_guide_radius`` R > 0 computes those image terms on the guided filter of the decoded crop
by the (colour-corrected) input crop, radius R (:mod:`oldphoto_bench.restore.guided`), which is what
``restore`` outputs; the latent term is unchanged.

``model.mapping_decoder: finetune`` (not in the paper, where both VAEs stay fixed) trains a copy of G_B with
T, at ``optim.lr * optim.decoder_lr_scale``; it is saved as this stage's network ``decoder`` and restore
decodes with it (:func:`~oldphoto_bench.train.artifacts.load_output_vae`).
"""

from __future__ import annotations

import torch

from ..losses import l1_reconstruction, latent_l1, ssim_loss
from ..models import latent_valid_from_mask
from ..models.colour import apply_colour, fit_colour
from ..seeding import derive_seed, numpy_rng
from .adversarial import discriminator_term, generator_terms
from .artifacts import load_vae
from .stages import STAGES, Stage
from .vae_stage import check_crop, image_discriminator_spec, setup_vgg

MAPPING_TARGETS = ("clean", "input-colour")
MAPPING_MASKS = ("ground-truth", "partial")  # data.mapping_mask
SEED_MASK = 6  # derive_seed(seed, SEED_MASK, rank, step): which damage components a step's crops keep
MAPPING_DECODERS = ("frozen", "finetune")  # model.mapping_decoder


@STAGES.register("mapping")
class MappingStage(Stage):
    """Trains T (and an image discriminator on VAE_B's decodings) with both VAEs frozen."""

    requires = ("vae-a", "vae-b")
    main_stream = "pairs"

    def build(self) -> None:
        cfg = self.cfg
        self.vae_a = self.precision.prepare(load_vae(self.ctx.runs, "vae-a", "cpu"))
        self.vae_b = self.precision.prepare(load_vae(self.ctx.runs, "vae-b", "cpu"))
        ca, cb = self.vae_a.latent_channels, self.vae_b.latent_channels
        if ca != cb or self.vae_a.multiple != self.vae_b.multiple:
            raise ValueError(f"vae-a and vae-b latents differ ({ca} vs {cb} channels, /{self.vae_a.multiple} vs "
                             f"/{self.vae_b.multiple}); train both with the same model.vae config")
        check_crop(cfg["data"]["crop"], self.vae_a.multiple)
        self.mapping = self.add_model("mapping", {"type": "mapping", "latent_channels": ca, **cfg["model"]["mapping"]})
        self.decoder = self.build_decoder()
        self.stepped = [self.optimizers[k] for k in ("mapping", "decoder") if k in self.optimizers]  # what L_T trains
        self.uses_mask = bool(self.models["mapping"].has_nonlocal)
        self.image_guide = None
        if int(cfg["loss"].get("mapping_image_guide_radius", 0)):
            # imported only when used: the restore package is not part of training's start-up otherwise
            from functools import partial

            from ..restore.guided import guided_filter

            self.image_guide = partial(guided_filter, radius=int(cfg["loss"]["mapping_image_guide_radius"]))
        self.colour = None
        if cfg["data"].get("colour_correct", False):
            # the restore pipeline corrects the photo's global colour before encoding: train on what it sees
            from .artifacts import load_colour

            self.colour = self.precision.prepare(load_colour(self.ctx.runs, "cpu"))
            self.ctx.note("inputs colour-corrected by RUNS/colour before encoding (data.colour_correct)")
        self.d_image = self.add_model("d_image", image_discriminator_spec(cfg))
        # with loss.gan and loss.feature_matching both 0 the discriminator is built (checkpoints keep one shape)
        # but never run: an L1-only mapping costs about half as much per step
        self.adversarial = float(cfg["loss"]["gan"]) > 0 or float(cfg["loss"]["feature_matching"]) > 0
        self.vgg = setup_vgg(self)
        data = cfg["data"]
        self.target = str(data.get("mapping_target", "clean"))
        if self.target not in MAPPING_TARGETS:
            raise KeyError(f"unknown data.mapping_target {self.target!r}; valid names: {', '.join(MAPPING_TARGETS)}")
        if self.target != "clean":
            self.ctx.note("targets recoloured to the input's global colour (data.mapping_target input-colour)")
        self.mask_mode = str(data.get("mapping_mask", "ground-truth"))
        if self.mask_mode not in MAPPING_MASKS:
            raise KeyError(f"unknown data.mapping_mask {self.mask_mode!r}; valid names: {', '.join(MAPPING_MASKS)}")
        self.mask_keep = float(data.get("mapping_mask_keep", 0.5))
        if self.mask_mode == "partial":
            if not 0.0 <= self.mask_keep <= 1.0:
                raise ValueError(f"data.mapping_mask_keep must be in [0, 1], got {self.mask_keep}")
            self.ctx.note(f"damage masks as a detector returns them: components kept with probability "
                          f"{self.mask_keep:g} and filled (data.mapping_mask partial)")
        ds = self.synthetic_pairs(self.ctx.data, 3)
        self.add_stream("pairs", ds, int(data["batch_size"]))

    def build_decoder(self) -> torch.nn.Module | None:
        """``model.mapping_decoder: finetune``: a trainable copy of VAE_B (saved as this stage's network
        ``decoder``) whose decoder learns with T at ``optim.lr * optim.decoder_lr_scale``; its encoder stays
        frozen, and the latent targets keep coming from the frozen VAE_B. ``frozen`` (the paper): None."""
        mode = str(self.cfg["model"].get("mapping_decoder", "frozen"))
        if mode not in MAPPING_DECODERS:
            raise KeyError(f"unknown model.mapping_decoder {mode!r}; valid names: {', '.join(MAPPING_DECODERS)}")
        if mode == "frozen":
            return None
        from .artifacts import checkpoint_path
        from .checkpoint import load_checkpoint
        from .ddp import wrap

        spec = load_checkpoint(checkpoint_path(self.ctx.runs, "vae-b"), map_location="cpu")["specs"]["vae"]
        spec = {k: v for k, v in spec.items() if k != "init_seed"}
        self.add_model("decoder", spec, trainable=False)  # saved whole (restore loads a VAE); optimizer below
        vae = self.models["decoder"]
        vae.load_state_dict(self.vae_b.state_dict())
        self.set_trainable(vae.encoder, False)
        # eval mode: BatchNorm keeps VAE_B's statistics (as VAE_A's shared decoder does); only weights learn.
        # In train mode the batch statistics of 8 crops changed the decoding at once: measured worse on
        # McMaster (19.11 dB, clean photo 26.34 dB against 19.26 and 27.68 frozen).
        vae.eval()
        optim = self.cfg["optim"]
        self.optimizers["decoder"] = torch.optim.Adam(vae.decoder.parameters(), lr=float(optim["lr"]),
                                                      betas=tuple(float(b) for b in optim["betas"]))
        self.lr_scales["decoder"] = float(optim.get("decoder_lr_scale", 1.0))
        self.ctx.note(f"VAE_B's decoder fine-tuned with T (model.mapping_decoder finetune, lr x "
                      f"{self.lr_scales['decoder']:g}); restore decodes with it")
        return wrap(vae.decoder, self.ctx.dist, self.device)  # (N, C, h, w) latents -> images

    def detected_masks(self, x: torch.Tensor, mask: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``data.mapping_mask partial``: ``(x, mask)`` -> ``(x with the kept components filled, the filled
        mask)``, both ``(N, C, h, w)``; see the module docstring. ``ground-truth``: both unchanged."""
        if self.mask_mode == "ground-truth":
            return x, mask
        from ..restore.inpaint import fill_mask, keep_components

        rng = numpy_rng(derive_seed(self.seed, SEED_MASK, self.ctx.dist.rank, step))
        xs, ms = [], []
        for xi, mi in zip(x.float().cpu().split(1), mask.float().cpu().split(1), strict=True):
            filled, grown = fill_mask(xi, keep_components(mi, self.mask_keep, rng))
            xs.append(filled)
            ms.append(grown)
        return torch.cat(xs).to(x.device, x.dtype), torch.cat(ms).to(mask.device, mask.dtype)

    def train_step(self, step: int) -> dict[str, float]:
        w = self.cfg["loss"]
        batch = self.next_batch("pairs")
        x, y = batch["degraded"], batch["clean"]
        x, mask = self.detected_masks(x, batch["mask"], step)
        valid = latent_valid_from_mask(mask, self.vae_a.multiple) if self.uses_mask else None
        with self.precision.autocast():
            with torch.no_grad():
                if self.colour is not None:
                    x = self.colour.correct(x.float())
                if self.target == "input-colour":
                    y = apply_colour(y.float(), fit_colour(y, x, 1.0 - batch["mask"].float()))
                z_x = self.vae_a.encode(x)[0]
                z_y = self.vae_b.encode(y)[0]
            mapped = self.mapping(z_x, valid)
            decoded = self.decoder(mapped) if self.decoder is not None else self.vae_b.decode(mapped)
            if self.image_guide is not None:
                # the image terms see what restore outputs: the decoded crop re-fitted onto the input crop
                decoded = self.image_guide(decoded.float(), x.float())
            losses = {"latent_l1": latent_l1(mapped.float(), z_y.float(), float(w["mapping_latent_l1"]))}
            if float(w["mapping_image_l1"]):
                losses["image_l1"] = float(w["mapping_image_l1"]) * l1_reconstruction(decoded.float(), y.float())
            if float(w.get("mapping_image_ssim", 0.0)):
                losses["image_ssim"] = float(w["mapping_image_ssim"]) * ssim_loss(decoded.float(), y.float())
            if self.adversarial:
                gan, fm = generator_terms(self.d_image, y, decoded, float(w["feature_matching"]))
                losses.update(g_gan=float(w["gan"]) * gan, g_fm=fm)
            if self.vgg is not None:
                losses["g_vgg"] = float(w["vgg"]) * self.vgg(decoded.float(), y.float())
            total = sum(losses.values())
        self.precision.step(total, *self.stepped)
        result = {k: v.detach().item() for k, v in losses.items()}
        result["total"] = total.detach().item()
        if self.adversarial:
            with self.precision.autocast():
                d_img = discriminator_term(self.d_image, y, decoded)
            self.precision.step(d_img, self.optimizers["d_image"])
            result["d_image"] = d_img.detach().item()
        return result
