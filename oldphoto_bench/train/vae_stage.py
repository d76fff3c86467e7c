"""Stages ``vae-a`` and ``vae-b``: the two VAEs of the triplet domain translation (paper Sec. 3.2).

``vae-b`` learns clean photos Y. ``vae-a`` learns old photos: synthetic ones X (clean crops of ``--data``
aged on the fly with the ``data.preset`` synthesizer) and real ones R (crops of ``--real``), sharing one
latent space, and a latent discriminator pushes R and X latents to be indistinguishable. Per step::

    x        = images of the step (vae-a: [X batch, R batch]; vae-b: Y batch)
    mu, logvar = E(x);  z = mu + exp(logvar / 2) * eps;  x' = G(z)
    L_VAE    = w_kl * KL / (latent elements per image) + w_l1 * |x' - x|_1
               + w_gan * L_GAN(D(x'), 1) + FM(D(x'), D(x)) [+ w_vgg * VGG(x', x)]
               [+ w_lat * 0.5 * (L(D_z(mu_R), 0) + L(D_z(mu_X), 1))]     vae-a with R and the switch on
    L_D      = 0.5 * (L(D(x), 1) + L(D(x'), 0))
    L_Dz     = 0.5 * (L(D_z(mu_R), 1) + L(D_z(mu_X), 0))

The KL term is divided by the number of latent elements per image so that its weight does not depend on the
crop size (the released code's ``--kl 1`` weights a per-element mean). The latent discriminator sees the
posterior means, the latents the mapping and the domain-gap tool use. ``model.latent_adversarial: false``
trains VAE_A on R and X without it (no latent discriminator is built or saved), to measure the gap it closes.
"""

from __future__ import annotations

import torch

from ..data import PairsDataset
from ..losses import kl_divergence, l1_reconstruction, maybe_vgg_perceptual
from .adversarial import confusion_terms, discriminator_term, generator_terms
from .stages import STAGES, Stage

VAE_A_INITS = ("none", "vae-b", "vae-b-shared-decoder")  # model.vae_a_init


def check_crop(crop: int, multiple: int) -> None:
    if int(crop) % multiple:
        raise ValueError(f"data.crop must be a multiple of {multiple} (the VAE's downsampling), got {crop}")


def setup_vgg(stage: Stage) -> torch.nn.Module | None:
    """The VGG perceptual loss when ``loss.vgg > 0`` and weights are on disk; says which in the run log."""
    loss = stage.cfg["loss"]
    if float(loss.get("vgg", 0.0)) <= 0:
        stage.extra["vgg_perceptual"] = "VGG perceptual loss: not used (loss.vgg is 0)"
        stage.ctx.note(stage.extra["vgg_perceptual"])
        return None
    module, message = maybe_vgg_perceptual(loss.get("vgg_weights"), stage.device)
    stage.extra["vgg_perceptual"] = message
    stage.ctx.note(message)
    return module


def image_discriminator_spec(cfg) -> dict:
    return {"type": "multiscale_patchgan", **cfg["model"]["image_discriminator"]}


class VAEStage(Stage):
    """Shared by ``vae-a`` and ``vae-b``; subclasses choose the data (:meth:`build_data`, :meth:`images`)."""

    def build(self) -> None:
        cfg = self.cfg
        self.vae = self.add_model("vae", {"type": "vae", **cfg["model"]["vae"]})
        bias = cfg["model"].get("vae_logvar_bias")
        if bias is not None:
            # Start with a small posterior std (exp(bias / 2)): with logvar = 0 at init the unit noise swamps
            # the still-small means and the decoder first learns to ignore z (the mean image).
            with torch.no_grad():
                self.models["vae"].encoder.logvar_head.bias.fill_(float(bias))
        check_crop(cfg["data"]["crop"], self.models["vae"].multiple)
        self.d_image = self.add_model("d_image", image_discriminator_spec(cfg))
        self.d_latent = None
        self.vgg = setup_vgg(self)
        self.build_data()

    def build_data(self) -> None:
        raise NotImplementedError

    def images(self) -> tuple[torch.Tensor, int]:
        """This step's images ``(B, 3, h, w)`` and how many of them (the first ones) are real old photos R."""
        raise NotImplementedError

    def train_step(self, step: int) -> dict[str, float]:
        w = self.cfg["loss"]
        x, n_real = self.images()
        with self.precision.autocast():
            out = self.vae(x, sample=True, generator=self.noise_generator(step))
            per_image = out.mu[0].numel()
            kl = kl_divergence(out.mu.float(), out.logvar.float()) / per_image
            l1 = l1_reconstruction(out.recon.float(), x.float())
            gan, fm = generator_terms(self.d_image, x, out.recon, float(w["feature_matching"]))
            losses = {"kl": float(w["kl"]) * kl, "l1": float(w["l1"]) * l1, "g_gan": float(w["gan"]) * gan,
                      "g_fm": fm}
            if self.vgg is not None:
                losses["g_vgg"] = float(w["vgg"]) * self.vgg(out.recon.float(), x.float())
            if self.d_latent is not None:
                mu_r, mu_x = out.mu[:n_real], out.mu[n_real:]
                losses["g_latent"] = float(w["latent_adversarial"]) * confusion_terms(self.d_latent, mu_r, mu_x)
            total = sum(losses.values())
        self.precision.step(total, self.optimizers["vae"])

        with self.precision.autocast():
            d_img = discriminator_term(self.d_image, x, out.recon)
        self.precision.step(d_img, self.optimizers["d_image"])
        result = {k: v.detach().item() for k, v in losses.items()}
        result.update(total=total.detach().item(), d_image=d_img.detach().item(), l1_raw=l1.detach().item())
        if self.d_latent is not None:
            with self.precision.autocast():
                d_lat = discriminator_term(self.d_latent, out.mu[:n_real], out.mu[n_real:])
            self.precision.step(d_lat, self.optimizers["d_latent"])
            result["d_latent"] = d_lat.detach().item()
        return result


@STAGES.register("vae-b")
class VAEBStage(VAEStage):
    """VAE_B on clean crops Y of ``--data`` (no degradation)."""

    main_stream = "clean"

    def build_data(self) -> None:
        data = self.cfg["data"]
        if self.ctx.real:
            self.ctx.note("note: --real is not used by vae-b (it learns clean photos only)")
        ds = PairsDataset(self.open_source(self.ctx.data), None, crop=int(data["crop"]), train=True,
                          seed=self.dataset_seed(0))
        self.add_stream("clean", ds, int(data["batch_size"]))

    def images(self) -> tuple[torch.Tensor, int]:
        return self.next_batch("clean")["clean"], 0


@STAGES.register("vae-a")
class VAEAStage(VAEStage):
    """VAE_A on real old photos R (``--real``) and synthetic ones X, with the latent adversarial loss."""

    main_stream = "synthetic"

    def build(self) -> None:
        super().build()
        init = self.cfg["model"].get("vae_a_init")
        self.shared_decoder = False
        if init in (None, "", "none"):
            return
        if init not in VAE_A_INITS:
            raise KeyError(f"unknown model.vae_a_init {init!r}; valid: {', '.join(VAE_A_INITS)}")
        # Warm start: VAE_A begins as VAE_B, so the old photos' latent space starts where the clean photos'
        # is and the mapping only has to learn the difference (a resumed run loads its own weights after).
        from .artifacts import load_vae

        source = load_vae(self.ctx.runs, "vae-b", "cpu")
        vae = self.models["vae"]
        try:
            vae.load_state_dict(source.state_dict())
        except RuntimeError as e:
            raise ValueError(f"model.vae_a_init: {init}: RUNS/vae-b was trained with another model.vae "
                             f"({str(e).splitlines()[0]})") from None
        self.extra["vae_a_init"] = init
        if init == "vae-b-shared-decoder":
            # Only the encoder learns: VAE_A's codes must decode through VAE_B's own (frozen) decoder, so the
            # two latent spaces stay one. Fine-tuning the whole warm-started VAE_A for 1200 steps let them
            # drift apart (VAE_B decoding VAE_A's code of a clean photo: 5.7 dB, measured on McMaster).
            self.shared_decoder = True
            for p in vae.decoder.parameters():
                p.requires_grad_(False)
            vae.decoder.eval()
        self.ctx.note(f"VAE_A starts from VAE_B's weights (model.vae_a_init: {init})")

    def train_step(self, step: int) -> dict[str, float]:
        if self.shared_decoder:
            self.models["vae"].decoder.eval()  # BatchNorm statistics stay VAE_B's
        return super().train_step(step)

    def build_data(self) -> None:
        data, model = self.cfg["data"], self.cfg["model"]
        batch = int(data["batch_size"])
        n_real = 0
        if self.ctx.real:
            n_real = min(batch - 1, max(1, round(batch * float(data["real_fraction"])))) if batch > 1 else 1
            real = PairsDataset(self.open_source(self.ctx.real), None, crop=int(data["crop"]), train=True,
                                seed=self.dataset_seed(2))
            self.add_stream("real", real, n_real)
            if model["latent_adversarial"]:
                latent_channels = self.models["vae"].latent_channels
                self.d_latent = self.add_model(
                    "d_latent", {"type": "latent_patchgan", "in_channels": latent_channels,
                                 **model["latent_discriminator"]})
            else:
                self.ctx.note("model.latent_adversarial is false: VAE_A trains on R and X without the "
                              "latent adversarial loss")
        else:
            self.ctx.note("warning: no --real folder of real old photos: VAE_A trains on synthetic old photos X "
                          "alone and the latent adversarial loss is off")
        self.n_real = n_real
        synthetic = self.synthetic_pairs(self.ctx.data, 1)
        self.add_stream("synthetic", synthetic, max(1, batch - n_real))
        self.extra["batch"] = {"real": n_real, "synthetic": max(1, batch - n_real)}

    def images(self) -> tuple[torch.Tensor, int]:
        x = self.next_batch("synthetic")["degraded"]
        if not self.n_real:
            return x, 0
        r = self.next_batch("real")["clean"]  # the real photo's crop (no synthetic damage on top)
        return torch.cat([r, x]), self.n_real
