"""File I/O in oldphoto_bench.imageio: every PIL mode in, the library convention out, and loud bad-input errors.

Expected values come from closed forms (v / 255, v / 65535, alpha over white, 255 - C for K = 0), from the
EXIF specification (orientation 6 = rotate 90 degrees clockwise) or from arrays written by OpenCV.
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageError,
    ImageInfo,
    from_pil,
    is_image_file,
    load_image,
    load_mask,
    save_image,
    save_mask,
    to_pil,
)
from oldphoto_bench.seeding import numpy_rng


def rand_u8(shape, seed=0) -> np.ndarray:
    return numpy_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def rand_u16(shape, seed=0) -> np.ndarray:
    return numpy_rng(seed).integers(0, 65536, size=shape, dtype=np.uint16)


def as_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def check_convention(x: torch.Tensor, h: int, w: int) -> None:
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, h, w)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming ``width`` x ``height`` gray pixels, with far too little pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
    path.write_bytes(data + png_chunk(b"IEND", b""))
    return path


def with_exif_chunk(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk (orientation tag) right after IHDR (8 + 25 bytes)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    tiff = exif.tobytes()[6:]  # drop the "Exif\0\0" JPEG marker prefix: eXIf holds bare TIFF data
    return png[:33] + png_chunk(b"eXIf", tiff) + png[33:]


# ------------------------------------------------------------------------------------------ modes


def test_gray_L_round_trip_stays_gray(tmp_path):
    a = rand_u8((6, 7))
    Image.fromarray(a, mode="L").save(tmp_path / "g.png")
    x, info = load_image(tmp_path / "g.png")
    check_convention(x, 6, 7)
    assert info == ImageInfo(str(tmp_path / "g.png"), 7, 6, True, "L", "PNG", 8, False)
    np.testing.assert_array_equal(as_hwc(x), np.repeat(a[:, :, None] / np.float32(255), 3, axis=2))
    out = save_image(x, tmp_path / "out" / "g2.png", grayscale=True)
    with Image.open(out) as back:
        assert back.mode == "L"
        np.testing.assert_array_equal(np.asarray(back), a)


def test_mode_1_is_gray_zero_one(tmp_path):
    a = rand_u8((5, 4)) > 127
    Image.fromarray(a).convert("1").save(tmp_path / "b.png")
    x, info = load_image(tmp_path / "b.png")
    assert info.mode == "1" and info.was_gray
    np.testing.assert_array_equal(as_hwc(x)[:, :, 0], a.astype(np.float32))


def test_rgb_exact_and_not_gray_even_if_channels_equal(tmp_path):
    a = rand_u8((4, 5, 3))
    Image.fromarray(a).save(tmp_path / "c.png")
    x, info = load_image(tmp_path / "c.png")
    np.testing.assert_array_equal(as_hwc(x), a / np.float32(255))
    g = np.repeat(rand_u8((4, 5))[:, :, None], 3, axis=2)
    Image.fromarray(g).save(tmp_path / "eq.png")
    assert load_image(tmp_path / "eq.png")[1].was_gray is False
    assert not info.was_gray and info.bit_depth == 8


def test_rgba_flattened_on_white(tmp_path):
    a = rand_u8((5, 6, 4), seed=1)
    Image.fromarray(a, mode="RGBA").save(tmp_path / "a.png")
    x, info = load_image(tmp_path / "a.png")
    alpha = a[:, :, 3:].astype(np.float64) / 255
    expected = alpha * a[:, :, :3] / 255 + (1 - alpha)
    np.testing.assert_allclose(as_hwc(x), expected, atol=1e-6)
    assert info.mode == "RGBA" and not info.was_gray


def test_la_flattened_on_white_and_gray(tmp_path):
    a = rand_u8((5, 6, 2), seed=2)
    Image.fromarray(a, mode="LA").save(tmp_path / "la.png")
    x, info = load_image(tmp_path / "la.png")
    alpha = a[:, :, 1].astype(np.float64) / 255
    expected = alpha * a[:, :, 0] / 255 + (1 - alpha)
    np.testing.assert_allclose(as_hwc(x), np.repeat(expected[:, :, None], 3, axis=2), atol=1e-6)
    assert info.was_gray


def test_palette_with_transparency(tmp_path):
    palette = [255, 0, 0, 0, 128, 0, 10, 20, 30]  # red, green, and a colour made fully transparent
    idx = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette)
    img.save(tmp_path / "p.png", transparency=2)
    x, info = load_image(tmp_path / "p.png")
    colours = np.array([[1, 0, 0], [0, 128 / 255, 0], [1, 1, 1]], dtype=np.float32)  # transparent -> white
    np.testing.assert_allclose(as_hwc(x), colours[idx], atol=1e-6)
    assert info.mode == "P" and not info.was_gray


def test_palette_gray_only_used_entries_count(tmp_path):
    idx = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette([0, 0, 0, 200, 200, 200, 255, 0, 0])  # entry 2 is red but unused
    img.save(tmp_path / "pg.gif")
    x, info = load_image(tmp_path / "pg.gif")
    assert info.was_gray and info.format == "GIF"
    np.testing.assert_allclose(as_hwc(x)[:, :, 1], np.array([[0, 200], [200, 0]]) / 255, atol=1e-6)


def test_cmyk_tiff_converted_to_rgb(tmp_path):
    cmyk = np.array([[[10, 20, 30, 0], [0, 0, 0, 255], [200, 100, 0, 0], [100, 0, 50, 100]]] * 2, np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "k.tif")
    x, info = load_image(tmp_path / "k.tif")
    c, k = cmyk[:, :, :3].astype(np.float64), cmyk[:, :, 3:].astype(np.float64)
    expected = (255 - c) * (255 - k) / 255 / 255  # naive CMYK: 255 - C when K = 0, black when K = 255
    np.testing.assert_allclose(as_hwc(x), expected, atol=1 / 255 + 1e-6)
    assert info.mode == "CMYK" and info.format == "TIFF"


def test_cmyk_jpeg_loads(tmp_path):
    cmyk = np.zeros((8, 8, 4), np.uint8)
    cmyk[:, :, 0] = 255  # full cyan, no black -> RGB (0, 1, 1)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "k.jpg", quality=100)
    x, info = load_image(tmp_path / "k.jpg")
    assert info.mode == "CMYK" and info.format == "JPEG"
    np.testing.assert_allclose(as_hwc(x).mean(axis=(0, 1)), [0, 1, 1], atol=0.03)


@pytest.mark.parametrize("mode, suffix", [("I;16", ".png"), ("I;16B", ".tif")])
def test_16bit_gray_exact(tmp_path, mode, suffix):
    a = rand_u16((5, 7), seed=3)
    Image.fromarray(a.astype(">u2" if mode == "I;16B" else "<u2")).save(tmp_path / f"g16{suffix}")
    x, info = load_image(tmp_path / f"g16{suffix}")
    assert info.was_gray and info.bit_depth == 16 and info.mode == mode
    np.testing.assert_allclose(as_hwc(x)[:, :, 0], a / 65535.0, atol=1e-7)


def test_mode_I_and_F_tiff(tmp_path):
    a = rand_u16((4, 5), seed=4).astype(np.int32)
    Image.fromarray(a).save(tmp_path / "i.tif")
    x, info = load_image(tmp_path / "i.tif")
    assert info.mode == "I" and info.was_gray and info.bit_depth == 16
    np.testing.assert_allclose(as_hwc(x)[:, :, 0], a / 65535.0, atol=1e-7)
    f = numpy_rng(5).random((4, 5), dtype=np.float32)
    Image.fromarray(f).save(tmp_path / "f.tif")
    x, info = load_image(tmp_path / "f.tif")
    assert info.mode == "F" and info.was_gray
    np.testing.assert_array_equal(as_hwc(x)[:, :, 0], f)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_keeps_full_precision(tmp_path, suffix):
    rgb = rand_u16((6, 5, 3), seed=6)
    rgb[0, 0] = [1, 257 * 100 + 128, 65534]  # values an 8-bit decode cannot represent
    assert cv2.imwrite(str(tmp_path / f"c16{suffix}"), rgb[:, :, ::-1].copy())  # OpenCV writes BGR
    x, info = load_image(tmp_path / f"c16{suffix}")
    expected = rgb / 65535.0
    np.testing.assert_allclose(as_hwc(x), expected, atol=1e-7)
    eight_bit = np.round(rgb / 257.0) / 255.0
    assert np.abs(eight_bit - expected).max() > 1e-4  # so the check above could not pass via 8 bits
    assert info.bit_depth == 16 and info.mode == "RGB" and not info.was_gray


def test_16bit_rgba_png_flattened_on_white(tmp_path):
    rgba = rand_u16((4, 6, 4), seed=7)
    assert cv2.imwrite(str(tmp_path / "a16.png"), rgba[:, :, [2, 1, 0, 3]].copy())
    x, info = load_image(tmp_path / "a16.png")
    alpha = rgba[:, :, 3:] / 65535.0
    np.testing.assert_allclose(as_hwc(x), alpha * rgba[:, :, :3] / 65535.0 + 1 - alpha, atol=1e-6)
    assert info.bit_depth == 16 and info.mode == "RGBA"


# ------------------------------------------------------------------------------------------ orientation


@pytest.mark.parametrize("orientation, turns", [(6, -1), (8, 1)])  # EXIF: 6 = rotate 90 CW, 8 = 90 CCW
def test_exif_orientation_rotates_jpeg(tmp_path, orientation, turns):
    a = np.zeros((16, 32, 3), np.uint8)
    a[:8, :16] = 255  # one bright quadrant: top-left
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "o.jpg", quality=98, exif=exif)
    x, info = load_image(tmp_path / "o.jpg")
    assert info.exif_transposed and (info.width, info.height) == (16, 32)
    check_convention(x, 32, 16)
    np.testing.assert_allclose(as_hwc(x), np.rot90(a, turns) / 255.0, atol=0.1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_path_orients_like_pil(tmp_path, orientation):
    a8 = rand_u8((3, 5, 3), seed=orientation)
    a16 = a8.astype(np.uint16) * 257  # same values at both depths, so both paths must agree exactly
    Image.fromarray(a8).save(tmp_path / "ref.png", exif=_exif(orientation))
    ok, buf = cv2.imencode(".png", a16[:, :, ::-1].copy())
    assert ok
    (tmp_path / "c16.png").write_bytes(with_exif_chunk(buf.tobytes(), orientation))
    ref, ref_info = load_image(tmp_path / "ref.png")
    x, info = load_image(tmp_path / "c16.png")
    assert info.bit_depth == 16 and ref_info.bit_depth == 8
    assert info.exif_transposed == ref_info.exif_transposed == (orientation != 1)
    torch.testing.assert_close(x, ref, atol=1e-6, rtol=0)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# ------------------------------------------------------------------------------------------ content, not suffix


def test_webp_content_in_jpg_file(tmp_path):
    a = rand_u8((6, 8, 3), seed=8)
    Image.fromarray(a).save(tmp_path / "lying.jpg", format="WEBP", lossless=True)
    x, info = load_image(tmp_path / "lying.jpg")
    assert info.format == "WEBP"
    np.testing.assert_array_equal(as_hwc(x), a / np.float32(255))


def test_extensions():
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"} <= IMAGE_EXTENSIONS
    assert is_image_file("a/B.JPG") and is_image_file(Path("x.tiff"))
    assert not is_image_file("notes.txt") and not is_image_file("png")


# ------------------------------------------------------------------------------------------ bad input


def expect_image_error(path: Path, *words: str, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(path, **kwargs)
    err = info.value
    assert isinstance(err, ValueError) and err.path == str(path)
    text = str(err)
    assert path.name in text and "\n" not in text
    for w in words:
        assert w in text, text
    return err


def test_missing_directory_empty_text(tmp_path):
    expect_image_error(tmp_path / "missing.png", "not found")
    (tmp_path / "folder.png").mkdir()
    expect_image_error(tmp_path / "folder.png", "directory")
    (tmp_path / "empty.png").write_bytes(b"")
    expect_image_error(tmp_path / "empty.png", "empty")
    (tmp_path / "x.png").write_text("hello, I am not a picture\n")
    expect_image_error(tmp_path / "x.png", "not an image")


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path, fmt, suffix):
    buf = io.BytesIO()
    Image.fromarray(rand_u8((64, 64, 3), seed=9)).save(buf, format=fmt)
    data = buf.getvalue()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    expect_image_error(tmp_path / f"cut{suffix}", "truncated or corrupt")


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_too_small(tmp_path, size):
    Image.new("RGB", size).save(tmp_path / "tiny.png")
    expect_image_error(tmp_path / "tiny.png", f"too small: {size[0]}x{size[1]}; need at least 2x2")


def test_over_pixel_limit_names_count_limit_and_flag(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    expect_image_error(tmp_path / "big.png", "400", "100", "max_pixels", "--max-pixels", max_pixels=100)
    assert load_image(tmp_path / "big.png", max_pixels=400)[0].shape == (1, 3, 20, 20)


@pytest.mark.parametrize("side", [12_000, 20_000])  # 144 MP: PIL warns; 400 MP: PIL raises its own error
def test_limit_checked_on_header_before_decoding(tmp_path, side):
    path = png_header_only(tmp_path / "bomb.png", side, side)
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # The pixel data is bogus: any decoding would report "truncated or corrupt" instead.
        expect_image_error(path, f"{side * side:,}", f"{DEFAULT_MAX_PIXELS:,}", "too large")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_our_limit_replaces_pils_and_restores_it(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL alone would refuse 20x20 = 400 > 2 * 100
    Image.fromarray(rand_u8((20, 20, 3))).save(tmp_path / "ok.png")
    Image.fromarray(rand_u8((20, 20, 3))).save(tmp_path / "ok.tif")  # TIFF re-checks the size on decode
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "ok.png")
    for name in ("ok.png", "ok.tif"):
        assert load_image(tmp_path / name)[0].shape == (1, 3, 20, 20)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_image_error_pickles():
    err = pickle.loads(pickle.dumps(ImageError("a/b.png", "file not found")))
    assert isinstance(err, ImageError) and err.path == "a/b.png" and str(err) == "a/b.png: file not found"


# ------------------------------------------------------------------------------------------ saving


@pytest.mark.parametrize("suffix, atol", [(".png", 0), (".bmp", 0), (".tif", 0), (".jpg", 0.08), (".webp", 0.15)])
def test_save_load_round_trip(tmp_path, suffix, atol):
    a = np.kron(rand_u8((4, 4, 3), seed=10), np.ones((8, 8, 1), np.uint8))  # flat 8x8 blocks: easy for JPEG
    x = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    out = save_image(x, tmp_path / "deep" / "er" / f"img{suffix}")
    assert out == tmp_path / "deep" / "er" / f"img{suffix}"
    y, info = load_image(out)
    assert (info.width, info.height, info.was_gray) == (32, 32, False)
    assert float((y - x).abs().mean()) <= atol / 4 and float((y - x).abs().max()) <= max(atol, 1e-7) * 4
    assert sorted(p.name for p in out.parent.iterdir()) == [f"img{suffix}"]  # no temp files left


def test_save_clamps_rounds_and_accepts_chw(tmp_path):
    x = torch.tensor([-0.5, 0.5, 1.5, 100 / 255 + 0.4 / 255]).view(1, 2, 2).expand(3, 2, 2)
    save_image(x, tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as img:
        assert img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img)[:, :, 0], [[0, 128], [255, 100]])
    with pytest.raises(ValueError, match="NaN"):
        save_image(torch.full((3, 2, 2), float("nan")), tmp_path / "n.png")


def test_save_grayscale_uses_bt601_luma(tmp_path):
    a = rand_u8((3, 4, 3), seed=11)
    save_image(torch.from_numpy(a.transpose(2, 0, 1) / np.float32(255)), tmp_path / "y.png", grayscale=True)
    expected = np.floor(0.299 * a[:, :, 0] + 0.587 * a[:, :, 1] + 0.114 * a[:, :, 2] + 0.5)
    with Image.open(tmp_path / "y.png") as img:
        assert img.mode == "L"
        assert np.abs(np.asarray(img).astype(int) - expected).max() <= 1  # float32 vs float64 at .5 ties


def test_save_unknown_suffix(tmp_path):
    with pytest.raises(ImageError, match=r"out\.xyz.*\.png"):
        save_image(torch.zeros(1, 3, 2, 2), tmp_path / "out.xyz")


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "keep.png")
    before = target.read_bytes()

    def crash(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.ones(1, 3, 4, 4), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_pil_conversions():
    a = rand_u8((3, 5, 3), seed=12)
    x, gray = from_pil(Image.fromarray(a))
    assert not gray
    img = to_pil(x)
    assert img.mode == "RGB" and img.size == (5, 3)
    np.testing.assert_array_equal(np.asarray(img), a)
    assert from_pil(Image.fromarray(a[:, :, 0]))[1] is True


# ------------------------------------------------------------------------------------------ masks


@pytest.mark.parametrize("shape", [(6, 5), (1, 6, 5), (1, 1, 6, 5)])
def test_mask_round_trip(tmp_path, shape):
    values = torch.from_numpy(numpy_rng(13).random((6, 5), dtype=np.float32))
    for mask in (values > 0.5, values):
        out = save_mask(mask.reshape(shape), tmp_path / "m.png")
        with Image.open(out) as img:
            assert img.mode == "L" and set(np.unique(np.asarray(img))) <= {0, 255}
        back = load_mask(out)
        assert back.dtype == torch.float32 and tuple(back.shape) == (1, 1, 6, 5)
        torch.testing.assert_close(back[0, 0], (values > 0.5).float(), atol=0, rtol=0)


def test_mask_needs_png(tmp_path):
    with pytest.raises(ImageError, match="PNG"):
        save_mask(torch.zeros(4, 4, dtype=torch.bool), tmp_path / "m.jpg")


# ------------------------------------------------------------------------------------------ shared data


def test_shared_data_gray_and_lying_suffix(shared_data):
    bridge = shared_data / "clean" / "set14" / "bridge.png"
    webp = shared_data / "faces" / "deepface" / "img47.jpg"
    if not (bridge.is_file() and webp.is_file()):
        pytest.skip("expected shared files are missing")
    x, info = load_image(bridge)
    assert info.was_gray and info.mode == "L"
    check_convention(x, info.height, info.width)
    assert load_image(webp)[1].format == "WEBP"
