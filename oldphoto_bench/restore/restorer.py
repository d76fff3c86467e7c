"""The restoration pipeline: scratch detection -> global restoration in the latent space -> faces.

    from oldphoto_bench.restore import Restorer
    restorer = Restorer("runs", with_scratch=True)          # loads every network once
    result = restorer.restore(image)                        # (1, 3, H, W) in [0, 1], any H and W
    result.image, result.mask, result.stages["global"], result.details["seconds"]

Stages (paper Sec. 3; the released ``run.py`` chains them as separate scripts):

1. **scratch detection** (``with_scratch``): the U-Net on the luma at full resolution (the released code
   rescales to a 256-pixel side first), in overlapping blended tiles (:func:`~.tiling.run_tiled`; tile 512,
   overlap 128, margin 32 for the depth-4 detector), ``mask = sigmoid >= threshold`` (the threshold calibrated
   when the detector was trained; 0.4, as released, for a detector without one), without detections smaller
   than ``min_component`` pixels (48; specks are mostly false positives, :mod:`.inpaint`), optionally dilated by
   ``dilation`` pixels (a ``(2d + 1)`` square; none by default, as the released test pipeline). When the runs
   folder has a ``torn`` stage (``torn=True``), its whole-photo torn-piece mask (:mod:`.torn`) is united with
   the scratch mask: the tiled detector never finds the inside of a torn-off piece.
2. **global restoration**: with a mask, the mask grown by 1 pixel and filled by Telea inpainting
   (``mask_fill``, :mod:`.inpaint`; the released code paints it white and leaves the content to the
   nonlocal block, which at the ``tiny`` scale keeps the crack's shape), then ``x`` colour-corrected by
   ``RUNS/colour`` when present
   (:class:`~oldphoto_bench.models.colour.GlobalColourNet`, one affine map of RGB predicted from the whole
   photo), ``z = mu_A(x)`` (VAE_A's posterior mean), ``z' = T(z, valid)`` with the latent
   validity ``valid = latent_valid_from_mask(mask)`` (all valid without a mask), ``y = G_B(z')``. The image is
   padded bottom/right (reflection) to a multiple of 4 and at least :data:`MIN_SIDE` pixels, and cropped
   back. The VAEs and the mapping use InstanceNorm (statistics over the whole image) and a global nonlocal
   block, so they are never cut into tiles: large images run layer by layer over the whole image with
   banded convolutions (:mod:`.layerwise`), which gives the untiled result in memory linear in the pixels.
   Last, ``y`` is re-fitted onto the colour-corrected input by a guided filter (``guide_radius``,
   ``guide_eps``; :mod:`.guided`, not in the released code): the input's edges at ``y``'s local tone, while
   the grain and dust that ``y`` removed stay removed and ``y``'s own checkerboard is dropped.
3. **faces** (``faces=True``): :func:`oldphoto_bench.faces.refine_faces` on the stage-2 output with the face
   enhancer of ``RUNS/face/last.pt``; without that checkpoint faces are only detected and listed, the image
   is unchanged; without the faces package the stage is skipped with a note.

Grayscale in, grayscale out: when the three input channels are equal (or ``grayscale=True``), every output
is the luma of the network's output, replicated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..imageio import gray_to_rgb, rgb_to_luma
from ..models import DETECTION_THRESHOLD, latent_valid_from_mask
from .checkpoints import (  # noqa: F401  (also importable from here)
    DEFAULT_CHECKPOINTS,
    STAGE_DESCRIPTIONS,
    MissingCheckpointsError,
    check_checkpoints,
    default_checkpoints,
    required_stages,
)
from .damage import MASK_DILATION, TORN_COMPONENT_PROB, DamageDetector
from .guided import GUIDE_EPS, GUIDE_RADIUS, detail_layer, guided_filter
from .inpaint import FILL_DILATION, MASK_FILLS, MIN_COMPONENT, fill_mask
from .layerwise import ATTENTION_MODES, DEFAULT_BAND_ELEMENTS, LayerwiseRunner

DEFAULT_TILE = 512  # detector tile side when tiling automatically (run_tiled's default)
MIN_TILE = 64
AUTO_WHOLE_PIXELS = 1 << 20  # automatic mode: up to 1 megapixel the networks are called on the whole image
MIN_SIDE = 32  # images are padded to at least this side (the VAE's 7x7 reflection pad, InstanceNorm on 8x8)


@dataclass
class RestoreResult:
    """``image`` ``(1, 3, H, W)`` float32 in [0, 1] on the CPU (the final output); ``mask`` ``(1, 1, H, W)``
    in {0, 1} (None without scratch handling); ``stages``: ``"scratch_probability"``, ``"torn_probability"``,
    ``"mask"``, ``"global"`` (stage 2's output, before faces), ``"final"``; ``details``: ``seconds`` per
    stage, ``faces`` (one dict per face), ``notes``, ``mask_fraction``, ``layerwise``, ``detector_tile``,
    ``grayscale``, ``size``."""

    image: torch.Tensor
    mask: torch.Tensor | None
    stages: dict[str, torch.Tensor] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Restorer:
    """The whole pipeline built once from a checkpoint folder; see the module docstring.

    Args:
        checkpoints: runs folder holding ``vae-a``, ``vae-b``, ``mapping`` (and ``scratch``, ``face``) as
            written by ``oldphoto-bench train`` (default :func:`default_checkpoints`: the shipped ones).
        device: where the networks run (``"cpu"``, ``"cuda"``); images and outputs stay on the CPU.
        with_scratch: run stage 1 and use its mask in the mapping.
        faces: run stage 3.
        tile: ``None``: automatic (detector tiles of 512 px, layer-by-layer VAE/mapping above 1 megapixel);
            ``0``: no tiling (every network on the whole image at once); ``N >= 64``: detector tiles of ``N``
            pixels, and the VAE/mapping layer by layer with bands of about ``64 N^2`` floats. The VAE/mapping
            result does not depend on it (exact); the detector's tiles are cross-faded.
        face_backend: ``hybrid``, ``dlib``, ``cascade``, or ``auto`` (the first of those that can run here).
        threshold: scratch probability at or above which a pixel is masked; ``None``: the threshold
            calibrated when the detector was trained (for a false-positive budget on undamaged training
            crops), or the released 0.4 for a detector without one.
        dilation: pixels the mask grows by (0: none).
        torn: with ``with_scratch``, also run the torn-piece detector of ``RUNS/torn`` when the folder has one
            and unite its mask with the scratch mask.
        torn_threshold: torn-piece probability at or above which a pixel is masked (None: the checkpoint's).
        torn_component_prob: torn-piece components whose mean probability is below this are dropped.
        attention: ``"linear"`` or ``"dense"`` (the released N x N attention; for the scaling benchmark).
        guide_radius, guide_eps: the guided filter that ends stage 2 (:mod:`.guided`): the decoded image
            re-fitted, window by window, onto the colour-corrected input's structure; ``guide_radius`` 0
            leaves the decoder's output as it is (the released pipeline has no such step).
        detail: in [0, 1], the share of the colour-corrected input's fine detail (:func:`.guided.detail_layer`:
            texture, fine edges and grain) added back after the guided filter; 0 (default): none.
        band_elements: override the floats per band of the layer-by-layer mode.

    Raises :class:`MissingCheckpointsError` (a ``FileNotFoundError``) naming what is missing and the commands
    that train it, and ``ValueError`` for checkpoints that do not fit together.
    """

    def __init__(
        self,
        checkpoints: str | Path | None = None,
        device: str = "cpu",
        with_scratch: bool = False,
        faces: bool = True,
        tile: int | None = None,
        face_backend: str = "auto",
        threshold: float | None = None,
        dilation: int = MASK_DILATION,
        attention: str = "linear",
        band_elements: int | None = None,
        mask_fill: str = "telea",
        fill_dilation: int = FILL_DILATION,
        min_component: int = MIN_COMPONENT,
        torn: bool = True,
        torn_threshold: float | None = None,
        torn_component_prob: float = TORN_COMPONENT_PROB,
        guide_radius: int = GUIDE_RADIUS,
        guide_eps: float = GUIDE_EPS,
        detail: float = 0.0,
    ):
        from ..train.artifacts import checkpoint_path, load_mapping, load_output_vae, load_vae

        if tile is not None and (int(tile) < 0 or 0 < int(tile) < MIN_TILE):
            raise ValueError(f"tile must be 0 (no tiling) or at least {MIN_TILE} pixels, got {tile}")
        if attention not in ATTENTION_MODES:
            raise KeyError(f"unknown attention {attention!r}; valid names: {', '.join(ATTENTION_MODES)}")
        if min(int(dilation), int(fill_dilation), int(min_component)) < 0:
            raise ValueError(f"dilation, fill_dilation and min_component must be >= 0, got {dilation}, "
                             f"{fill_dilation} and {min_component}")
        if mask_fill not in MASK_FILLS:
            raise KeyError(f"unknown mask_fill {mask_fill!r}; valid names: {', '.join(MASK_FILLS)}")
        if int(guide_radius) < 0 or not float(guide_eps) > 0:
            raise ValueError(f"guide_radius must be >= 0 and guide_eps > 0, got {guide_radius} and {guide_eps}")
        self.mask_fill, self.fill_dilation = mask_fill, int(fill_dilation)
        if not 0.0 <= float(detail) <= 1.0:
            raise ValueError(f"detail must be in [0, 1], got {detail}")
        self.guide_radius, self.guide_eps, self.detail = int(guide_radius), float(guide_eps), float(detail)
        self.runs = Path(checkpoints) if checkpoints is not None else default_checkpoints()
        self.device = str(device)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device cuda was asked for, but torch sees no CUDA device")
        self.with_scratch, self.faces, self.tile = bool(with_scratch), bool(faces), tile
        self.attention = attention
        if band_elements is None:
            band_elements = DEFAULT_BAND_ELEMENTS if not tile else int(tile) ** 2 * 64
        self.band_elements = int(band_elements)
        self.notes: list[str] = []
        check_checkpoints(self.runs, self.with_scratch)
        self.vae_a = load_vae(self.runs, "vae-a", self.device)
        self.vae_b = load_output_vae(self.runs, self.device)  # VAE_B, or the mapping's fine-tuned copy of it
        self.mapping = load_mapping(self.runs, self.device)
        # stage 1 (scratch and torn-piece detectors); without it the settings are only reported
        self.damage = None
        self._settings = {"threshold": DETECTION_THRESHOLD if threshold is None else float(threshold),
                          "dilation": int(dilation), "min_component": int(min_component)}
        if self.with_scratch:
            self.damage = DamageDetector(self.runs, self.device, self.detector_tile, threshold, int(dilation),
                                         int(min_component), torn, torn_threshold, torn_component_prob)
        self.colour = None
        if checkpoint_path(self.runs, "colour").is_file():
            from ..train.artifacts import load_colour

            self.colour = load_colour(self.runs, self.device)
        self._check_compatible()
        self.refine_fn = self.enhancer = self.face_detector = None
        if self.faces:
            self._setup_faces(face_backend)

    # ---- construction -------------------------------------------------------------------------------------
    def _check_compatible(self) -> None:
        from ..train.artifacts import checkpoint_path, train_command

        a, b = self.vae_a, self.vae_b
        if a.latent_channels != b.latent_channels or a.multiple != b.multiple:
            raise ValueError(
                f"{checkpoint_path(self.runs, 'vae-a')} and {checkpoint_path(self.runs, 'vae-b')} do not fit "
                f"together: latents of {a.latent_channels} vs {b.latent_channels} channels at "
                f"1/{a.multiple} vs "
                f"1/{b.multiple}; retrain both with the same config "
                f"(`{train_command(self.runs, 'vae-a')}`, `{train_command(self.runs, 'vae-b')}`)"
            )
        mapped = self.mapping.up[0].in_channels
        if mapped != a.latent_channels:
            raise ValueError(
                f"{checkpoint_path(self.runs, 'mapping')} maps {mapped}-channel latents but the VAEs have "
                f"{a.latent_channels}; retrain it with `{train_command(self.runs, 'mapping')}`"
            )
        if self.detector is not None and self.detector.stem[1].in_channels not in (1, 3):
            raise ValueError(
                f"{checkpoint_path(self.runs, 'scratch')} takes {self.detector.stem[1].in_channels} channels, "
                f"neither luma (1) nor RGB (3); retrain it with `{train_command(self.runs, 'scratch')}`"
            )
        if self.with_scratch and not self.mapping.has_nonlocal:
            self.notes.append(
                "the mapping has no partial nonlocal block: the scratch mask is detected, saved and "
                f"filled (mask_fill {self.mask_fill}) but cannot steer the translation"
            )

    def _setup_faces(self, backend: str) -> None:
        from ..train import artifacts

        try:
            from ..faces import build_detector, refine_faces
        except ImportError as e:
            self.notes.append(f"faces stage skipped: oldphoto_bench.faces cannot be imported ({e})")
            return
        self.refine_fn = refine_faces
        self.face_detector = build_detector(backend)
        path = artifacts.checkpoint_path(self.runs, "face")
        loader = getattr(artifacts, "load_face", None)
        if not path.is_file():
            self.notes.append(
                f"no face enhancer checkpoint {path}: faces are detected and listed, not changed"
            )
        elif loader is None:
            self.notes.append(
                f"{path} found, but this version cannot load face checkpoints: faces are only detected"
            )
        else:
            self.enhancer = loader(self.runs, self.device)

    # ---- stages -------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    @property
    def detector_tile(self) -> int | None:
        """Detector tile side (None: whole image)."""
        if self.tile == 0:
            return None
        return DEFAULT_TILE if self.tile is None else int(self.tile)

    def uses_layerwise(self, height: int, width: int) -> bool:
        """Whether stage 2 runs layer by layer (banded) for an image of this size."""
        if self.attention == "dense":
            return True  # the dense reference is only wired into the layer-by-layer runner
        if self.tile is None:
            return height * width > AUTO_WHOLE_PIXELS
        return self.tile > 0

    # stage 1's networks and settings live in self.damage (:class:`~.damage.DamageDetector`)
    @property
    def detector(self) -> torch.nn.Module | None:
        """The scratch detector (None without ``with_scratch``); assignable, e.g. to test another network."""
        return None if self.damage is None else self.damage.detector

    @detector.setter
    def detector(self, net: torch.nn.Module) -> None:
        self._stage1().detector = net

    @property
    def torn(self) -> torch.nn.Module | None:
        """The torn-piece detector (None without ``with_scratch`` or a ``RUNS/torn`` checkpoint)."""
        return None if self.damage is None else self.damage.torn

    def _setting(self, name: str) -> Any:
        return getattr(self.damage, name) if self.damage is not None else self._settings.get(name)

    @property
    def threshold(self) -> float:
        """Scratch probability threshold in use (the calibrated one unless overridden)."""
        return self._setting("threshold")

    @property
    def dilation(self) -> int:
        return self._setting("dilation")

    @property
    def min_component(self) -> int:
        return self._setting("min_component")

    @property
    def torn_threshold(self) -> float | None:
        """Torn-piece probability threshold in use (None without a torn-piece detector)."""
        return self._setting("torn_threshold")

    def _stage1(self) -> DamageDetector:
        if self.damage is None:
            raise ValueError("this Restorer was built without the scratch detector (with_scratch=False)")
        return self.damage

    def detect(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1's scratch probability ``(1, 1, H, W)`` in [0, 1] (CPU) for ``image`` ``(1, 3, H, W)``."""
        return self._stage1().scratch_probability(image)

    def detect_torn(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1's torn-piece probability ``(1, 1, H, W)`` in [0, 1] (CPU) of ``image`` (:mod:`.torn`)."""
        return self._stage1().torn_probability(image)

    def mask_from_probability(self, prob: torch.Tensor) -> torch.Tensor:
        """The scratch mask of a scratch probability (:meth:`.damage.DamageDetector.mask_from_probability`)."""
        return self._stage1().mask_from_probability(prob)

    def detect_mask(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1's mask ``(1, 1, H, W)`` in {0, 1}: scratches united with torn pieces, as :meth:`restore`."""
        return self._stage1()(image).mask

    @torch.no_grad()
    def correct_colour(self, image: torch.Tensor) -> torch.Tensor:
        """The global colour correction of ``RUNS/colour`` (the identity without one): ``(1, 3, H, W)`` -> same."""
        if self.colour is None:
            return image
        return self.colour.correct(image.float().to(self.device)).cpu()

    @torch.no_grad()
    def restore_global(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Stage 2: ``GF(G_B(T(mu_A(C(x)), valid(mask))), C(x))`` with ``C`` the global colour correction when
        the runs folder has one and ``GF`` the guided filter (:mod:`.guided`; off with ``guide_radius`` 0):
        ``image`` ``(1, 3, H, W)`` -> ``(1, 3, H, W)`` (CPU).

        With a ``mask`` and :attr:`mask_fill` ``telea`` the mask is first grown by :attr:`fill_dilation` pixels
        and its pixels inpainted (:func:`~oldphoto_bench.restore.inpaint.fill_mask`), so the encoder never
        sees the crack (nor does the guided filter); the grown mask steers the nonlocal block. With
        :attr:`detail` ``b > 0``, ``b`` times the corrected input's detail layer is added last."""
        if mask is not None:
            image, mask = fill_mask(image.float().cpu(), mask.float().cpu(), self.mask_fill, self.fill_dilation)
        image = self.correct_colour(image)
        h, w = image.shape[-2:]
        m = self.vae_a.multiple
        th, tw = max(math.ceil(h / m) * m, MIN_SIDE), max(math.ceil(w / m) * m, MIN_SIDE)
        mode = "reflect" if th - h < h and tw - w < w else "replicate"
        x = F.pad(image.float().to(self.device), (0, tw - w, 0, th - h), mode=mode)
        valid = None
        if mask is not None and self.mapping.has_nonlocal:
            mp = F.pad(mask.float().to(self.device), (0, tw - w, 0, th - h), mode=mode)
            valid = latent_valid_from_mask(mp, m)
        if self.uses_layerwise(h, w):
            runner = LayerwiseRunner(self.band_elements, self.attention)
            z = runner.encode(self.vae_a.encoder, x)
            del x
            z = runner.map(self.mapping, z, valid)
            y = runner.run(self.vae_b.decoder, z, owned=True)
        else:
            y = self.vae_b.decode(self.mapping(self.vae_a.encode(x)[0], valid))
        y = guided_filter(y[..., :h, :w].float().cpu(), image.float(), self.guide_radius, self.guide_eps)
        if self.detail > 0:
            y = (y + self.detail * detail_layer(image.float())).clamp(0.0, 1.0)
        return y

    def refine_faces(self, image: torch.Tensor, fallback: torch.Tensor | None = None) -> tuple[torch.Tensor, list[dict]]:
        """Stage 3 -> (image, one report dict per face); the image unchanged when the stage is off.

        ``fallback``: the pipeline's input, where faces are looked for when none is found on ``image``.
        """
        if self.refine_fn is None:
            return image, []
        return self.refine_fn(image, self.enhancer, device=self.device, detector=self.face_detector,
                              fallback=fallback)

    # ---- the pipeline -------------------------------------------------------------------------------------
    @torch.no_grad()
    def restore(
        self, image: torch.Tensor, mask: torch.Tensor | None = None, grayscale: bool | None = None
    ) -> RestoreResult:
        """Run every stage on ``image`` ``(1, 3, H, W)`` (or ``(1, 1, H, W)`` gray) in [0, 1], any H, W >= 2.

        ``mask`` ``(1, 1, H, W)``: use this damage mask instead of detecting one (stage 1 is skipped).
        ``grayscale``: None detects it (three equal channels).
        """
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
            raise ValueError(
                f"restore takes one image (1, 3, H, W) or (1, 1, H, W), got {tuple(image.shape)}"
            )
        if min(image.shape[-2:]) < 2:
            raise ValueError(f"image too small: {tuple(image.shape[-2:])}; need at least 2x2")
        image = image.detach().float().cpu().clamp(0.0, 1.0)
        if image.shape[1] == 1:
            image, grayscale = gray_to_rgb(image), True if grayscale is None else grayscale
        if grayscale is None:
            grayscale = bool(torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2]))
        if mask is not None and tuple(mask.shape) != (1, 1, *image.shape[-2:]):
            raise ValueError(
                f"mask must be (1, 1, H, W) = (1, 1, {image.shape[2]}, {image.shape[3]}), got "
                f"{tuple(mask.shape)}"
            )
        h, w = image.shape[-2:]
        seconds: dict[str, float] = {}
        stages: dict[str, torch.Tensor] = {}
        notes = list(self.notes)
        t_start = time.perf_counter()

        if mask is not None:
            mask = (mask.detach().float().cpu() > 0.5).float()
            notes.append("mask given: scratch detection skipped")
        elif self.damage is not None:
            found = self.damage(image)
            self._sync()
            mask = found.mask
            seconds.update(found.seconds)
            stages.update(found.stages)
        if mask is not None:
            stages["mask"] = mask

        t0 = time.perf_counter()
        restored = self.restore_global(image, mask)
        self._sync()
        seconds["global"] = time.perf_counter() - t0
        if grayscale:
            restored = gray_to_rgb(rgb_to_luma(restored))
        stages["global"] = restored

        faces: list[dict] = []
        final = restored
        if self.faces and self.refine_fn is not None:
            t0 = time.perf_counter()
            final, faces = self.refine_faces(restored, fallback=image if image.shape == restored.shape else None)
            final = final.float().cpu()
            if grayscale:
                final = gray_to_rgb(rgb_to_luma(final))
            self._sync()
            seconds["faces"] = time.perf_counter() - t0
        stages["final"] = final
        seconds["total"] = time.perf_counter() - t_start
        details = {
            "size": [int(h), int(w)],
            "grayscale": grayscale,
            "seconds": seconds,
            "faces": faces,
            "notes": notes,
            "mask_fraction": float(mask.mean()) if mask is not None else None,
            "layerwise": self.uses_layerwise(h, w),
            "detector_tile": self.detector_tile if self.with_scratch else None,
            "attention": self.attention,
        }
        return RestoreResult(image=final, mask=mask, stages=stages, details=details)
