"""Image sources: scikit-image's photos, folders, files, Hugging Face imagefolders, specs and the split rule."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto_bench.data import (
    ALL_SETS,
    EMBEDDED_PHOTOS,
    FACE_TRAIN_SETS,
    OLD_PHOTO_SETS,
    TEST_SETS,
    TRAIN_SETS,
    ConcatSource,
    EmbeddedSource,
    FileListSource,
    FolderSource,
    HFSource,
    SourceSpecError,
    check_not_test_set,
    open_source,
    parse_hf_spec,
    shared_data_root,
    which_test_set,
)
from oldphoto_bench.imageio import ImageError


def as_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> HxWx3 uint8 (test-side reference conversion)."""
    return np.rint(image[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the call."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def write_png(path, array) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def random_rgb(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ---- embedded ---------------------------------------------------------------------------------------------
def test_embedded_photos_load_offline_and_match_skimage(no_network):
    import skimage.data

    src = EmbeddedSource()
    assert len(src) == len(EMBEDDED_PHOTOS) >= 7
    assert src.names() == [n for n, _ in EMBEDDED_PHOTOS]
    assert len(set(src.names())) == len(src)
    for i, sample in enumerate(src):
        img = sample.image
        assert img.dtype == torch.float32 and img.dim() == 4 and img.shape[:2] == (1, 3)
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
        assert sample.name == src.names()[i] and sample.info["index"] == i
        ref = getattr(skimage.data, dict(EMBEDDED_PHOTOS)[sample.name])()
        ref = ref[0] if isinstance(ref, tuple) else ref
        ref = np.repeat(ref[:, :, None], 3, axis=2) if ref.ndim == 2 else ref
        np.testing.assert_array_equal(as_uint8_hwc(img), ref)
        assert sample.info["was_gray"] == (ref.ndim == 3 and np.array_equal(ref[..., 0], ref[..., 1])
                                           and np.array_equal(ref[..., 1], ref[..., 2]))
    camera = src[src.names().index("camera")]
    assert camera.info["was_gray"] is True
    assert torch.equal(camera.image[:, 0], camera.image[:, 1]) and torch.equal(camera.image[:, 1], camera.image[:, 2])
    assert src[src.names().index("astronaut")].info["was_gray"] is False


def test_embedded_subset_negative_index_and_errors():
    src = EmbeddedSource(["coffee", "camera"])
    assert src.names() == ["coffee", "camera"]
    assert src[-1].name == "camera"
    with pytest.raises(IndexError):
        src[2]
    with pytest.raises(KeyError, match="astronaut"):  # lists the valid names
        EmbeddedSource(["lena"])


# ---- folders ----------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    arrays = {
        "c.png": write_png(root / "c.png", random_rgb(1, 9, 11)),
        "a/b.png": write_png(root / "a" / "b.png", random_rgb(2, 7, 5)),
        "z/y/x.png": write_png(root / "z" / "y" / "x.png", random_rgb(3, 6, 6)),
        "a/gray.png": write_png(root / "a" / "gray.png", random_rgb(4, 8, 8)[..., 0]),
    }
    (root / "notes.txt").write_text("not an image")
    (root / "z" / "table.csv").write_text("1,2\n")
    (root / "SOURCES.md").write_text("documentation, skipped quietly")
    write_png(root / ".hidden" / "h.png", random_rgb(5, 4, 4))
    return root, arrays


def test_folder_source_recursive_sorted_with_one_warning_per_non_image(tree, caplog):
    root, arrays = tree
    with caplog.at_level(logging.WARNING, logger="oldphoto_bench"):
        src = FolderSource(root)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert all(r.name == "oldphoto_bench" for r in warned)
    assert sorted(r.getMessage().split("/")[-1] for r in warned) == ["notes.txt", "table.csv"]
    assert src.names() == sorted(arrays)  # sorted by relative path, hidden folder left out
    for i, name in enumerate(src.names()):
        sample = src[i]
        ref = arrays[name]
        ref = np.repeat(ref[:, :, None], 3, axis=2) if ref.ndim == 2 else ref
        np.testing.assert_array_equal(as_uint8_hwc(sample.image), ref)
        assert sample.info["was_gray"] == (name == "a/gray.png")
        assert sample.info["path"] == str(root / name)
    assert FolderSource(root).names() == src.names()  # stable
    assert FolderSource(root, recursive=False).names() == ["c.png"]


def test_folder_source_is_lazy_and_corrupt_file_raises_on_access(tmp_path):
    write_png(tmp_path / "good.png", random_rgb(0, 5, 5))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    src = FolderSource(tmp_path)  # builds without decoding anything
    assert src.names() == ["bad.png", "good.png"]
    with pytest.raises(ImageError, match="bad.png"):
        src[0]
    assert src[1].image.shape == (1, 3, 5, 5)


def test_folder_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        FolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        FolderSource(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no image files.*\.png"):
        FolderSource(tmp_path / "text")


# ---- Hugging Face -----------------------------------------------------------------------------------------
@pytest.fixture
def hf_offline(monkeypatch, tmp_path, no_network):
    """Offline Hugging Face with every cache under tmp_path (nothing is written into ~ or ../shared)."""
    datasets = pytest.importorskip("datasets")
    home = tmp_path / "hf_home"
    for var, value in [("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1"), ("HF_HOME", str(home)),
                       ("HF_DATASETS_CACHE", str(home / "datasets")), ("HF_HUB_CACHE", str(home / "hub"))]:
        monkeypatch.setenv(var, value)
    # the libraries read these at import time; set the already-imported values too
    for module, attr in [(datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE")]:
        if hasattr(module, attr):
            monkeypatch.setattr(module, attr, True)
    try:
        import huggingface_hub.constants as hub_constants

        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    except (ImportError, AttributeError):
        pass
    return tmp_path / "hf_cache"


def test_hf_local_imagefolder_offline(tmp_path, hf_offline):
    folder = tmp_path / "imgs"
    arrays = {f"im{i}.png": write_png(folder / f"im{i}.png", random_rgb(10 + i, 6 + i, 8)) for i in range(2)}
    arrays["im2.png"] = write_png(folder / "im2.png", random_rgb(12, 5, 7)[..., 1])  # mode L
    src = open_source(f"hf:{folder}", cache_dir=hf_offline)
    assert isinstance(src, HFSource) and src.split == "train"
    assert len(src) == 3
    assert sorted(src.names()) == sorted(arrays)
    for i, name in enumerate(src.names()):
        sample = src[i]
        assert sample.name == name
        ref = arrays[name]
        ref = np.repeat(ref[:, :, None], 3, axis=2) if ref.ndim == 2 else ref
        np.testing.assert_array_equal(as_uint8_hwc(sample.image), ref)
        assert sample.info["was_gray"] == (name == "im2.png")
    assert any(hf_offline.rglob("*.arrow"))  # the cache went where we said


def test_hf_hub_id_is_lazy_and_fails_clearly_offline(hf_offline):
    src = HFSource("hf:someone/some-photos:test", cache_dir=hf_offline)  # no network at construction
    assert (src.dataset_id, src.split, src.local) == ("someone/some-photos", "test", False)
    with pytest.raises(RuntimeError, match="network"):
        len(src)


def test_hf_spec_parsing_and_bad_ids(tmp_path):
    assert parse_hf_spec("hf:owner/name") == ("owner/name", "train")
    assert parse_hf_spec("hf:owner/name:validation") == ("owner/name", "validation")
    assert parse_hf_spec("hf:owner/name:train[:10%]") == ("owner/name", "train[:10%]")
    with pytest.raises(SourceSpecError):
        HFSource("hf:")
    with pytest.raises(SourceSpecError, match="neither an existing folder nor"):
        HFSource(f"hf:{tmp_path / 'no such folder'}")


# ---- specs ------------------------------------------------------------------------------------------------
def test_open_source_forms(tree, tmp_path):
    root, arrays = tree
    assert isinstance(open_source(), EmbeddedSource)
    assert isinstance(open_source(" embedded "), EmbeddedSource)
    folder = open_source(str(root))
    assert isinstance(folder, FolderSource) and folder.names() == sorted(arrays)
    single = open_source(str(root / "z" / "y" / "x.png"))
    assert isinstance(single, FileListSource) and single.names() == ["x.png"]
    np.testing.assert_array_equal(as_uint8_hwc(single[0].image), arrays["z/y/x.png"])

    both = open_source(f"{root},embedded")
    assert isinstance(both, ConcatSource)
    n = len(arrays)
    assert len(both) == n + len(EMBEDDED_PHOTOS)
    assert both.names() == sorted(arrays) + [p for p, _ in EMBEDDED_PHOTOS]
    assert torch.equal(both[n].image, EmbeddedSource()[0].image)
    assert both[n].info["index"] == n and both[n].info["part_index"] == 0
    assert torch.equal(both[n - 1].image, folder[n - 1].image)


def test_concat_names_stay_unique(tmp_path):
    for sub in ("old", "old_w_scratch"):
        write_png(tmp_path / sub / "a.png", random_rgb(0, 4, 4))
    src = open_source(f"{tmp_path / 'old'},{tmp_path / 'old_w_scratch'}")
    assert src.names() == ["old/a.png", "old_w_scratch/a.png"]
    twice = open_source(f"{tmp_path / 'old'},{tmp_path / 'old'}")
    assert len(set(twice.names())) == 2


@pytest.mark.parametrize("spec", ["", " , ", "embedded,", "no/such/path.png", "embeded"])
def test_open_source_errors_list_the_forms(spec):
    with pytest.raises(SourceSpecError) as err:
        open_source(spec)
    msg = str(err.value)
    assert "embedded" in msg and "hf:" in msg and "comma" in msg


def test_open_source_rejects_non_image_file(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceSpecError, match="not an image file"):
        open_source(str(tmp_path / "notes.txt"))


# ---- split rule -------------------------------------------------------------------------------------------
def test_split_constants_are_disjoint():
    train = set(TRAIN_SETS) | set(FACE_TRAIN_SETS) | set(OLD_PHOTO_SETS)
    assert not train & set(TEST_SETS)
    assert {"clean/kodak24", "faces/ffhq10", "embedded"} <= set(TEST_SETS)
    assert {"clean/cbsd68", "clean/mcmaster", "clean/set14"} <= set(TRAIN_SETS)
    assert len(ALL_SETS) == len(set(ALL_SETS))


def test_check_not_test_set(tmp_path, monkeypatch):
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(tmp_path / "shared"))
    for name in ("clean/kodak24", "clean/cbsd68", "faces/ffhq10"):
        (tmp_path / "shared" / name).mkdir(parents=True)
    assert shared_data_root() == (tmp_path / "shared").resolve()
    check_not_test_set(f"{tmp_path / 'shared' / 'clean' / 'cbsd68'}")  # a training set passes
    for bad in ("embedded", f"{tmp_path / 'shared' / 'clean' / 'kodak24'}", "elsewhere/faces/ffhq10/00001.png",
                f"{tmp_path / 'shared' / 'clean'}", f"hf:{tmp_path / 'shared' / 'faces' / 'ffhq10'}"):
        assert which_test_set(bad) is not None, bad
        with pytest.raises(ValueError, match="test set"):
            check_not_test_set(f"{tmp_path / 'shared' / 'clean' / 'cbsd68'},{bad}")
    copy = tmp_path / "mine"
    (copy / "kodak24").mkdir(parents=True)
    assert which_test_set(str(copy)) == "clean/kodak24"


def test_shared_data_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(tmp_path / "absent"))
    assert shared_data_root() is None
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(tmp_path))
    assert shared_data_root() == tmp_path.resolve()


# ---- the developers' shared data --------------------------------------------------------------------------
# image counts from shared/data/README.md
SHARED_COUNTS = {"clean/bsds500": 400, "clean/cbsd68": 68, "clean/kodak24": 24, "clean/mcmaster": 18, "clean/set14": 14,
                 "faces/ffhq10": 10, "faces/deepface": 64, "old/bopbtl/old": 8, "old/bopbtl/old_w_scratch": 4}


def test_shared_sets_open_quietly(shared_data, caplog):
    assert set(SHARED_COUNTS) == set(ALL_SETS) - {"embedded"}
    with caplog.at_level(logging.WARNING, logger="oldphoto_bench"):
        sources = {name: FolderSource(shared_data / name) for name in SHARED_COUNTS}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # SOURCES.md, LICENSE.txt: quiet
    for name, src in sources.items():
        assert len(src) == SHARED_COUNTS[name], name
        assert src[0].image.shape[:2] == (1, 3)
    set14 = sources["clean/set14"]
    assert set14[set14.names().index("bridge.png")].info["was_gray"] is True  # mode L
    assert set14[set14.names().index("man.png")].info["was_gray"] is False  # grey stored as RGB
    for name in TEST_SETS[:2]:
        assert which_test_set(str(shared_data / name)) == name
    for name in TRAIN_SETS + FACE_TRAIN_SETS + OLD_PHOTO_SETS:
        check_not_test_set(str(shared_data / name))
