"""Learned baselines: ``pix2pix`` and ``unet`` (trained by ``oldphoto-bench train baseline NAME`` on the same
synthetic pairs and budget as our method, see :mod:`oldphoto_bench.train.baseline_stage`), and ``dip``
(Deep Image Prior, Ulyanov et al. 2018: no training data, one network fitted per photo).

``dip`` per photo, with seed ``s`` (the photo's benchmark seed), ``x`` the degraded photo and ``K = 1 - M``
the pixels outside the damage mask ``M`` (:mod:`.masks`; all pixels when no mask can be had)::

    f = DIPNet(init_seed=derive_seed(s, 0));  z ~ U(0, input_noise)  from derive_seed(s, 1)
    for t in 1..iterations:   z_t = z + reg_noise * N(0, 1);   L = sum K (f(z_t) - x)^2 / (3 sum K);  Adam step
    output = exponential average (weight ``average``) of f(z_t) over the iterations

Defaults follow the paper's denoising setting (Adam, lr 0.01, input noise U(0, 0.1), regularising noise
1/30, output averaging 0.99) with a smaller network and a fixed iteration budget of 1000 (the paper stops
by hand between 1800 and 3000; a benchmark needs one budget for all photos). Deep Image Prior needs a GPU
for photos of a few hundred pixels; ``--set dip.iterations=N`` trades quality for time.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ...imageio import gray_to_rgb, rgb_to_luma
from ...seeding import derive_seed, torch_generator
from .base import METHODS, Method, MethodContext, MethodInput, MethodUnavailable
from .masks import DamageMasks


def _is_gray(image: torch.Tensor) -> bool:
    return bool(torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2]))


def _keep_gray(image: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Grayscale in, grayscale out (as our pipeline): the luma of ``out`` when ``image`` has equal channels."""
    return gray_to_rgb(rgb_to_luma(out)) if _is_gray(image) else out


class TrainedBaseline(Method):
    """A U-Net generator from ``RUNS/baseline-<name>/last.pt`` applied to the whole photo."""

    kind: ClassVar[str] = "learned"

    def __init__(self, ctx: MethodContext):
        super().__init__(ctx)
        from ...train.baseline_stage import baseline_checkpoint, load_baseline

        path = baseline_checkpoint(ctx.checkpoints, self.name)
        try:
            self.net = load_baseline(ctx.checkpoints, self.name, ctx.device)
        except FileNotFoundError as e:
            raise MethodUnavailable(self.name, str(e)) from None
        from ...provenance import sha256_file

        self.settings = {"checkpoint": str(path), "sha256": sha256_file(path)[:16], "device": ctx.device,
                         "input": "the whole photo, padded (reflection) to a multiple of 2^depth and cropped back",
                         "grayscale": "equal-channel inputs give the luma of the output, replicated"}

    @torch.no_grad()
    def restore(self, item: MethodInput) -> torch.Tensor:
        out = self.net(item.image.to(self.ctx.device)).float().cpu().clamp(0.0, 1.0)
        return _keep_gray(item.image, out)


@METHODS.register("pix2pix")
class Pix2Pix(TrainedBaseline):
    name: ClassVar[str] = "pix2pix"
    description: ClassVar[str] = "pix2pix: U-Net + PatchGAN, conditional GAN + L1 (trained baseline)"


@METHODS.register("unet")
class UNetRegression(TrainedBaseline):
    name: ClassVar[str] = "unet"
    description: ClassVar[str] = "the same U-Net trained by direct L1 regression (trained baseline)"


@METHODS.register("dip")
class DeepImagePrior(Method):
    name: ClassVar[str] = "dip"
    kind: ClassVar[str] = "learned"
    description: ClassVar[str] = "Deep Image Prior: a network fitted to each photo (masked), fixed iteration budget"

    def __init__(self, ctx: MethodContext, iterations: int = 1000, lr: float = 0.01, width: int = 64,
                 depth: int = 4, skip_channels: int = 4, input_channels: int = 32, input_noise: float = 0.1,
                 reg_noise: float = 1.0 / 30.0, average: float = 0.99, use_mask: bool = True):
        super().__init__(ctx)
        if int(iterations) < 1:
            raise ValueError(f"dip.iterations must be >= 1, got {iterations}")
        self.masks, mask_text = None, "none: every pixel is fitted (pure denoising prior)"
        if use_mask:
            try:
                self.masks = DamageMasks(ctx, self.name)
                mask_text = self.masks.description
            except MethodUnavailable as e:
                mask_text = f"none: {e.reason}"
        self.net_spec = {"in_channels": int(input_channels), "width": int(width), "skip_channels": int(skip_channels),
                         "depth": int(depth)}
        self.settings = {"iterations": int(iterations), "optimizer": "Adam", "lr": float(lr), **self.net_spec,
                         "input_noise": float(input_noise), "reg_noise": float(reg_noise), "average": float(average),
                         "mask_source": self.masks.source if self.masks else None, "mask": mask_text,
                         "loss": "mean squared error over the pixels outside the mask", "device": ctx.device,
                         "seeds": "network init derive_seed(photo_seed, 0); noise derive_seed(photo_seed, 1)"}

    def restore(self, item: MethodInput) -> torch.Tensor:
        from ...models.baselines import DIPNet

        s, dev = self.settings, self.ctx.device
        x = item.image.float().to(dev)
        known = (1.0 - self.masks(item)).to(dev) if self.masks is not None else torch.ones_like(x[:, :1])
        net = DIPNet(**self.net_spec, init_seed=derive_seed(item.seed, 0)).to(dev).train()
        gen = torch_generator(derive_seed(item.seed, 1))  # CPU draws: identical on every device
        z = torch.rand((1, s["in_channels"], *x.shape[-2:]), generator=gen) * s["input_noise"]
        opt = torch.optim.Adam(net.parameters(), lr=s["lr"])
        denom = (3.0 * known.sum()).clamp_min(1.0)
        avg = None
        for _ in range(s["iterations"]):
            zt = z + s["reg_noise"] * torch.randn(z.shape, generator=gen) if s["reg_noise"] else z
            out = net(zt.to(dev))
            loss = ((out - x).pow(2) * known).sum() / denom
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            o = out.detach()
            avg = o if avg is None else avg.mul_(s["average"]).add_(o, alpha=1.0 - s["average"])
        return _keep_gray(item.image, avg.float().cpu().clamp(0.0, 1.0))

