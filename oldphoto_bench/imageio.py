"""Image conversions and file I/O: the one place where pixels enter or leave the library's convention.

Convention inside the library: ``torch.float32``, NCHW, RGB, values in ``[0, 1]``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` and OpenCV's RGB2GRAY use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC array (uint8, uint16, bool or float in [0, 1]) -> (1, 3, H, W) float32 RGB in [0, 1].

    One channel is replicated to three; a fourth (alpha) channel is not accepted here (flatten it first).
    """
    a = np.asarray(array)
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / 65535.0
    elif a.dtype == np.bool_:
        x = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        x = a.astype(np.float32)
    else:
        raise TypeError(f"unsupported array dtype {a.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"expected HxW, HxWx1 or HxWx3, got shape {a.shape}")
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].clamp_(0.0, 1.0)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> HxWxC float32 array (on CPU)."""
    t = image.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_numpy takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected (1, C, H, W) or (C, H, W), got {tuple(image.shape)}")
    return t.float().cpu().numpy().transpose(1, 2, 0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) / (C, H, W) float in [0, 1] -> HxWxC uint8, rounding to nearest."""
    return (np.clip(to_numpy(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rgb_to_luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601)."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image * w).sum(dim=1, keepdim=True)


def gray_to_rgb(gray: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 3, H, W) by replicating the channel."""
    return gray.expand(-1, 3, -1, -1).contiguous()


def resize_max_side(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """Downscale ``(1, 3, H, W)`` so that ``max(H, W) <= max_side`` (antialiased bicubic, aspect kept);
    unchanged when already small enough or ``max_side <= 0``."""
    h, w = image.shape[-2:]
    if max_side <= 0 or max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    size = (max(2, round(h * s)), max(2, round(w * s)))
    out = torch.nn.functional.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# File I/O
# ---------------------------------------------------------------------------------------------------------

DEFAULT_MAX_PIXELS = 80_000_000  # 80 megapixels: any scanned photo, far below a decompression bomb

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"})

# Formats Image.open may identify (by content, not suffix). Closed list: no EPS/PDF-style plugins that
# call external programs. (JPEGs with extra pictures, format "MPO", are opened through "JPEG".)
_READ_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "DIB", "WEBP", "GIF", "PPM")
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                 ".bmp": "BMP", ".webp": "WEBP"}
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_HIGH_DEPTH_MODES = frozenset({"I", "F"})  # plus every "I;16..." mode

# PIL.Image.MAX_IMAGE_PIXELS is process-global; it is lifted only under this lock and always restored.
_PIL_LIMIT_LOCK = threading.Lock()
_tmp_counter = itertools.count()


class ImageError(ValueError):
    """A file that cannot be used as an image. ``str(e)`` is one line: ``"<path>: <what is wrong>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep it picklable (DataLoader workers send exceptions between processes)
        return type(self), (self.path, self.problem)


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`load_image` found. ``width``/``height`` are after EXIF orientation.

    ``was_gray``: the source mode is single-channel (1, L, LA, I, I;16*, F) or a palette whose used
    entries are all gray. An RGB file whose three channels happen to be equal is *not* gray.
    ``bit_depth``: 8, or 16 for every source with more than 8 bits per channel (I;16*, I, F, 16-bit RGB).
    """

    path: str
    width: int
    height: int
    was_gray: bool
    mode: str
    format: str
    bit_depth: int
    exif_transposed: bool


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the suffix (case-insensitive) is one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _flatten_on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """out = a * c + (1 - a) * 1 for float arrays in [0, 1]; ``alpha`` is HxW, ``color`` HxW or HxWxC."""
    a = alpha if color.ndim == 2 else alpha[:, :, None]
    return (a * color + (1.0 - a)).astype(np.float32)


def _palette_is_gray(img: Image.Image) -> bool:
    palette = img.getpalette("RGB") or []
    rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    used = np.unique(np.asarray(img))
    used = used[used < len(rgb)]
    entries = rgb[used]
    return bool(np.all(entries[:, 0] == entries[:, 1]) and np.all(entries[:, 1] == entries[:, 2]))


def from_pil(img: Image.Image) -> tuple[torch.Tensor, bool]:
    """Any-mode PIL image -> ((1, 3, H, W) float32 RGB in [0, 1], was_gray).

    Modes: 1, L -> /255; LA, RGBA, P with transparency -> alpha flattened on white, out = a*c + (1-a);
    I;16* and I -> /65535 (I clamped); F taken as already on a [0, 1] scale and clamped (NaN -> 0);
    CMYK, YCbCr, RGBX, ... -> PIL's conversion to RGB. EXIF orientation is *not* applied here
    (:func:`load_image` does it), so in-memory images (e.g. from Hugging Face datasets) pass as they are.
    """
    mode = img.mode
    if mode in ("1", "L"):
        return to_tensor(np.asarray(img.convert("L"))), True
    if mode.startswith("I;16") or mode == "I":
        x = np.asarray(img).astype(np.float32) / 65535.0
        return to_tensor(np.clip(x, 0.0, 1.0)), True
    if mode == "F":
        x = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return to_tensor(np.clip(x, 0.0, 1.0)), True
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"), dtype=np.float32) / 255.0
        return to_tensor(_flatten_on_white(la[:, :, 0], la[:, :, 1])), True
    was_gray = False
    if mode in ("P", "PA"):
        was_gray = _palette_is_gray(img)
        img = img.convert("RGBA" if (mode == "PA" or img.has_transparency_data) else "RGB")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        rgba = np.asarray(img, dtype=np.float32) / 255.0
        return to_tensor(_flatten_on_white(rgba[:, :, :3], rgba[:, :, 3])), was_gray
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError as e:
            raise ValueError(f"cannot convert PIL mode {mode!r} to RGB: {e}") from None
    return to_tensor(np.asarray(img)), was_gray


def to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] (clamped) -> 8-bit RGB PIL image, rounding to nearest."""
    return Image.fromarray(to_uint8(image), mode="RGB")


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise ImageError(p, f"cannot read file: it is a link to {os.readlink(p)}, which does not exist") from None
        raise ImageError(p, "file not found") from None
    except PermissionError:
        raise ImageError(p, "cannot read file: permission denied (a folder on its path may not be "
                            "searchable)") from None
    except OSError as e:
        raise ImageError(p, f"cannot read file: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(p, "is a directory, not an image file")
    if st.st_size == 0:
        raise ImageError(p, "file is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageError(p, "cannot read file: permission denied")
    return p


@contextlib.contextmanager
def _pil_limit_lifted():
    """Run with PIL's own decompression-bomb limit off (we apply ``max_pixels`` instead), then restore it."""
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _open(p: Path) -> Image.Image:
    """Identify by content and read the header only (no pixel decoding)."""
    try:
        try:
            # PIL's bomb check runs inside open(); it warns above ~89 MP and raises above ~179 MP.
            with _PIL_LIMIT_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return Image.open(p, formats=_READ_FORMATS)
        except Image.DecompressionBombError:
            with _pil_limit_lifted():  # only to learn the size; our own limit is checked next
                return Image.open(p, formats=_READ_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(p, "not an image in a supported format (PNG, JPEG, TIFF, BMP, WebP, GIF), "
                            "or its header is corrupt") from None
    except PermissionError:
        raise ImageError(p, "cannot read file: permission denied") from None
    except OSError as e:
        if e.errno is None:  # PIL's own decoding errors carry no errno
            raise ImageError(p, f"corrupt image header ({_first_line(e)})") from None
        raise ImageError(p, f"cannot read file: {e.strerror or e}") from None
    except Exception as e:  # third-party decoders raise many types on malformed headers
        raise ImageError(p, f"corrupt image header ({_first_line(e)})") from None


def _check_size(p: Path, width: int, height: int, max_pixels: int | None) -> None:
    if width < 2 or height < 2:
        raise ImageError(p, f"too small: {width}x{height}; need at least 2x2")
    n = width * height
    if max_pixels is not None and n > max_pixels:
        raise ImageError(p, f"too large: {width}x{height} = {n:,} pixels exceeds the limit of "
                            f"{max_pixels:,}; "
                            "if you trust this file, raise it with the max_pixels argument "
                            "(CLI: --max-pixels N)")


def _decode(im: Image.Image, p: Path) -> None:
    """Force a full decode so truncated or corrupt data fails here, not later."""
    limit = Image.MAX_IMAGE_PIXELS
    lift = limit is not None and im.width * im.height > limit  # PIL re-checks size while decoding TIFF/GIF
    try:
        with _pil_limit_lifted() if lift else contextlib.nullcontext():
            im.load()
    except Exception as e:
        raise ImageError(p, f"image data is truncated or corrupt ({_first_line(e)})") from None


def _is_16bit_color(im: Image.Image, p: Path) -> bool:
    """PIL decodes 16-bit-per-channel colour (and gray+alpha) PNG/TIFF to 8 bits; detect those files."""
    if im.mode not in ("RGB", "RGBA", "LA", "RGBX"):
        return False
    if im.format == "PNG":
        with open(p, "rb") as f:  # IHDR: 8-byte signature, length, type, width, height, then bit depth
            header = f.read(26)
        return len(header) == 26 and header[12:16] == b"IHDR" and header[24] == 16
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) >= 16
    return False


# EXIF orientation -> numpy equivalent of the PIL transpose that ImageOps.exif_transpose applies.
_ORIENT_OPS = {
    2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: np.rot90(a, 2),  # ROTATE_180
    4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
    6: lambda a: np.rot90(a, 3),  # ROTATE_270 (clockwise 90)
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # TRANSVERSE
    8: lambda a: np.rot90(a, 1),  # ROTATE_90 (counter-clockwise 90)
}


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF is common in scans and old cameras: treat as upright
        return 1
    return value if value in _ORIENT_OPS else 1


def _read_16bit_cv2(p: Path, orientation: int) -> np.ndarray | None:
    """Full-precision HxWx3 float32 RGB from OpenCV (alpha flattened on white), or None if it fails."""
    import cv2  # lazy: only 16-bit colour files need OpenCV

    raw = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_UNCHANGED)  # fromfile: non-ASCII paths
    if raw is None or raw.dtype != np.uint16:
        return None
    x = raw.astype(np.float32) / 65535.0
    if x.ndim == 2:
        x = x[:, :, None]
    c = x.shape[2]
    if c == 2:  # gray + alpha
        x = _flatten_on_white(x[:, :, 0], x[:, :, 1])[:, :, None]
    elif c == 3:
        x = x[:, :, ::-1]  # BGR -> RGB
    elif c == 4:
        x = _flatten_on_white(x[:, :, 2::-1], x[:, :, 3])
    else:
        return None
    if orientation in _ORIENT_OPS:
        x = _ORIENT_OPS[orientation](x)
    return np.ascontiguousarray(x)


def probe_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding pixels: a cheap check that
    :func:`load_image` can start. Raises :class:`ImageError` as :func:`load_image` does (truncated pixel data
    is found only by decoding)."""
    p = _check_file(path)
    with _open(p) as im:
        _check_size(p, im.width, im.height, max_pixels)
        return int(im.width), int(im.height)


def load_image(
    path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[torch.Tensor, ImageInfo]:
    """Read an image file -> ((1, 3, H, W) float32 RGB in [0, 1], :class:`ImageInfo`).

    The format is decided by content, not by suffix (a .jpg may hold WebP). All modes go through
    :func:`from_pil` (alpha flattened on white); 16-bit colour PNG/TIFF is read with OpenCV at full
    precision (v / 65535). EXIF orientation is applied. ``max_pixels`` (None: no limit) is checked on
    the header size *before* any decoding; PIL's own decompression-bomb limit is replaced by it.

    Raises :class:`ImageError` naming the file for: missing, directory, empty, not an image, truncated or
    corrupt data, a side shorter than 2 pixels, or more than ``max_pixels`` pixels.
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) < 1):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    p = _check_file(path)
    with _open(p) as im:
        _check_size(p, im.width, im.height, max_pixels)
        _decode(im, p)
        mode, fmt = im.mode, str(im.format)
        orientation = _exif_orientation(im)
        sixteen = _is_16bit_color(im, p)
        x = _read_16bit_cv2(p, orientation) if sixteen else None
        if x is not None:
            image, was_gray, bit_depth = to_tensor(x), mode in _GRAY_MODES, 16
        else:
            if sixteen:
                warnings.warn(f"{p}: OpenCV could not decode this 16-bit file; using PIL's 8-bit decode",
                              stacklevel=2)
            upright = ImageOps.exif_transpose(im) if orientation != 1 else im
            try:
                image, was_gray = from_pil(upright)
            except ValueError as e:
                raise ImageError(p, str(e)) from None
            high = mode.startswith("I;16") or mode in _HIGH_DEPTH_MODES
            bit_depth = 16 if high else 8
    h, w = image.shape[-2:]
    info = ImageInfo(path=str(p), width=int(w), height=int(h), was_gray=was_gray, mode=mode, format=fmt,
                     bit_depth=bit_depth, exif_transposed=orientation != 1)
    return image, info


def _atomic_save(img: Image.Image, path: str | os.PathLike, fmt: str, **params) -> Path:
    """Write to a temporary file in the target folder, then os.replace: readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}-{threading.get_ident()}-{next(_tmp_counter)}.tmp")
    try:
        with open(tmp, "xb") as f:  # plain open: the file gets the usual umask permissions
            img.save(f, format=fmt, **params)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def _image_chw(image: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(image).detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image shaped (1, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
    t = t.float().cpu()
    if not torch.isfinite(t).all():
        raise ValueError("image contains NaN or infinite values")
    return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def save_image(image: torch.Tensor, path: str | os.PathLike, grayscale: bool = False,
               compress_level: int = 1, quality: int = 95) -> Path:
    """Write a (1, 3, H, W) or (3, H, W) float image in [0, 1] (clamped) as an 8-bit file; return its path.

    The format follows the suffix: .png, .jpg/.jpeg, .tif/.tiff, .bmp, .webp. ``grayscale=True`` writes a
    one-channel L image, Y = round(255 * (0.299 R + 0.587 G + 0.114 B)), so gray in -> gray out (WebP has
    no gray mode; PIL stores it as RGB). PNG ``compress_level`` defaults to 1: fast, and PNG is lossless
    at every level, only the file size changes. JPEG/WebP use ``quality``; JPEG keeps full-resolution
    chroma (4:4:4) so saved results are not blurred by subsampling. Parent folders are created; the file
    is written atomically (temporary file + os.replace).
    """
    p = Path(path)
    fmt = _SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        valid = ", ".join(sorted(_SAVE_FORMATS))
        raise ImageError(p, f"cannot save with suffix {p.suffix!r}; use one of {valid}")
    chw = _image_chw(image)
    if grayscale:
        luma = rgb_to_luma(chw[None])[0]
        img = Image.fromarray(to_uint8(luma)[:, :, 0], mode="L")
    else:
        img = Image.fromarray(to_uint8(chw), mode="RGB")
    params: dict = {}
    if fmt == "PNG":
        params = {"compress_level": int(compress_level)}
    elif fmt == "JPEG":
        params = {"quality": int(quality), "subsampling": 0}
    elif fmt == "WEBP":
        params = {"quality": int(quality)}
    return _atomic_save(img, p, fmt, **params)


def save_mask(mask: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write a mask (1, 1, H, W), (1, H, W) or (H, W), bool or float, as an L PNG: > 0.5 -> 255, else 0."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ImageError(p, "masks are saved as PNG (lossless); use a .png suffix")
    m = torch.as_tensor(mask).detach().cpu()
    shape = tuple(m.shape)
    while m.dim() > 2 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2:
        raise ValueError(f"expected a mask shaped (1, 1, H, W), (1, H, W) or (H, W), got {shape}")
    on = m if m.dtype == torch.bool else m.float() > 0.5
    return _atomic_save(Image.fromarray(on.numpy().astype(np.uint8) * 255, mode="L"), p, "PNG",
                        compress_level=1)


def load_mask(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Read a mask image -> (1, 1, H, W) float32 in {0, 1}: 1 where the luma is above 0.5 (> 127 of 255)."""
    image, _ = load_image(path, max_pixels=max_pixels)
    return (rgb_to_luma(image) > 0.5).float()
