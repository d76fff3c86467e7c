"""Stage ``face``: the SPADE face enhancer on aligned faces degraded with the ``face`` preset (issue 5).

The released system never published this network's training code; losses follow the issue and
pix2pixHD / SPADE, with a conditional multiscale discriminator ``D(cat(x, .))`` on 6 channels. Per step,
with ``x`` the degraded faces and ``y`` the clean ones (``data.crop`` x ``data.crop``)::

    L_G = w_l1 * |G(x) - y|_1 + w_gan * LSGAN(D(x, G(x)), 1) + FM(D(x, G(x)), D(x, y)) [+ w_vgg * VGG(G(x), y)]
          [+ w_grad * (|dx G(x) - dx y|_1 + |dy G(x) - dy y|_1)] [+ w_mse * mean (G(x) - y)^2]
    L_D = 0.5 * (LSGAN(D(x, y), 1) + LSGAN(D(x, G(x)), 0))

the same equations as :func:`oldphoto_bench.faces.face_training_step`, here with the framework's mixed
precision, DDP wrapping and exact resume. Weights: ``loss.l1``, ``loss.gan``, ``loss.feature_matching``,
``loss.vgg`` (VGG only when its weights are on disk; the run log says which), ``loss.gradient`` (default 0;
``dx``, ``dy``: differences of horizontally / vertically adjacent pixels, which L1 alone lets the
regression smooth away), ``loss.mse`` (default 0; the squared error PSNR measures: L1's optimum is the
median change, which for a residual network on mildly aged faces is no change at all).

``data.faces.age_size`` (default: ``data.crop``): faces are aligned and aged at this size, then both the aged and the
clean face are area-resized to ``data.crop``. At test time the enhancer sees the face of a photo aged at
full resolution and shrunk to its grid (faces/ffhq10: about 400 px faces, aligned at 256, fed at 128), so
ageing at a larger size than the network's matches the strength of blur, noise and JPEG it meets there.
``data.gray_target`` and ``data.clean_fraction`` are passed to the face data set.

Config: ``data.crop`` is the face size (the generator's ``size``), ``data.preset`` the synthesizer preset
(``face``), ``data.faces`` the face data options (:class:`~oldphoto_bench.faces.dataset.FaceDataset`:
``aligned``, ``backend``, ``min_face``, ``detect_max_side``), ``model.face`` the
:class:`~oldphoto_bench.faces.SPADEFaceGenerator` widths and ``model.face_discriminator`` the
:class:`~oldphoto_bench.models.MultiscalePatchDiscriminator` ones. Detected crops are cached in
``RUNS/face/face_crops/`` so resumed and repeated runs do not detect again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import open_source
from ..faces.dataset import FaceDataset
from ..faces.enhancer import SPADEFaceGenerator
from ..losses import gradient_l1, l1_reconstruction
from ..models import NETWORKS
from .adversarial import discriminator_term, generator_terms
from .data import usable_images
from .stages import STAGES, Stage
from .vae_stage import setup_vgg

FACE_NETWORK = "spade_face"
if FACE_NETWORK not in NETWORKS:  # the face generator is built from checkpoints like the other networks
    NETWORKS.register(FACE_NETWORK)(SPADEFaceGenerator)

FACE_DATA_KEYS = ("aligned", "backend", "min_face", "detect_max_side", "age_size")
CROP_CACHE = "face_crops"


@STAGES.register("face")
class FaceStage(Stage):
    """The face enhancer G and its conditional discriminator D on aligned faces of ``--data``."""

    name = "face"
    main_stream = "faces"

    def build(self) -> None:
        cfg = self.cfg
        data, model = cfg["data"], cfg["model"]
        size = int(data["crop"])
        self.size = size
        self.generator = self.add_model("generator", {"type": FACE_NETWORK, "size": size,
                                                      **model["face"]})
        self.discriminator = self.add_model("discriminator", {"type": "multiscale_patchgan", "in_channels": 6,
                                                              **model["face_discriminator"]})
        # loss.gan and loss.feature_matching both 0: the discriminator is kept (one checkpoint shape) but not run
        self.adversarial = float(cfg["loss"]["gan"]) > 0 or float(cfg["loss"]["feature_matching"]) > 0
        self.vgg = setup_vgg(self)
        if self.ctx.real:
            self.ctx.note("note: --real is not used by face (it learns from aligned faces of --data)")
        opts = dict(data.get("faces") or {})
        unknown = sorted(set(opts) - set(FACE_DATA_KEYS))
        if unknown:
            raise KeyError(f"unknown data.faces key(s) {unknown}; valid: {', '.join(FACE_DATA_KEYS)}")
        age_size = int(opts.pop("age_size", None) or size)
        if age_size < size:
            raise ValueError(f"data.faces.age_size {age_size} must be at least data.crop {size}")
        # Photos are read once (to detect and align, or to resize), so no decoded-photo cache here; the
        # dataset keeps the small crops in memory when data.cache_images is true.
        dataset = FaceDataset(usable_images(open_source(self.ctx.data), self.ctx.note), data["preset"], age_size,
                              train=True, gray_target=bool(data.get("gray_target", False)),
                              clean_fraction=float(data.get("clean_fraction", 0.0)),
                              seed=self.dataset_seed(0), cache_dir=self.ctx.runs / self.name / CROP_CACHE,
                              write_cache=self.ctx.dist.is_main,
                              keep_in_memory=bool(data.get("cache_images", True)), note=self.ctx.note, **opts)
        self.extra["faces"] = dataset.faces.summary
        self.add_stream("faces", dataset, int(data["batch_size"]))

    def train_step(self, step: int) -> dict[str, float]:
        w = self.cfg["loss"]
        batch = self.next_batch("faces")
        x, y = batch["degraded"], batch["clean"]
        if x.shape[-1] != self.size:  # aged at data.age_size
            x, y = (F.interpolate(t, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=True) for t in (x, y))
        with self.precision.autocast():
            fake = self.generator(x)
            real_pair, fake_pair = torch.cat([x, y], 1), torch.cat([x, fake], 1)
            l1 = l1_reconstruction(fake.float(), y.float())
            losses = {"g_l1": float(w["l1"]) * l1}
            if self.adversarial:
                gan, fm = generator_terms(self.discriminator, real_pair, fake_pair, float(w["feature_matching"]))
                losses.update(g_gan=float(w["gan"]) * gan, g_fm=fm)
            if float(w.get("mse", 0.0)) > 0:
                losses["g_mse"] = float(w["mse"]) * F.mse_loss(fake.float(), y.float())
            if float(w.get("gradient", 0.0)) > 0:
                losses["g_grad"] = float(w["gradient"]) * gradient_l1(fake.float(), y.float())
            if self.vgg is not None:
                losses["g_vgg"] = float(w["vgg"]) * self.vgg(fake.float(), y.float())
            total = sum(losses.values())
        self.precision.step(total, self.optimizers["generator"])
        result = {k: v.detach().item() for k, v in losses.items()}
        result.update(g_total=total.detach().item(), l1_raw=l1.detach().item())
        if self.adversarial:
            with self.precision.autocast():
                d_total = discriminator_term(self.discriminator, real_pair, fake_pair)
            self.precision.step(d_total, self.optimizers["discriminator"])
            result["d_total"] = d_total.detach().item()
        return result
