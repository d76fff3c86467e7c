"""Photo sources (folders, files, scikit-image's photos, Hugging Face data sets) and synthetic training pairs.

    from oldphoto_bench.data import open_source, PairsDataset
    src = open_source("embedded")            # or a folder, a file, "hf:<id>[:split]", or "a,b"
    pairs = PairsDataset(src, Synthesizer("paper"), crop=256, train=True, seed=0)
"""

from .hf import HFSource, parse_hf_spec
from .pairs import PairsDataset, collate
from .sources import (
    EMBEDDED_PHOTOS,
    ConcatSource,
    EmbeddedSource,
    FileListSource,
    FolderSource,
    Sample,
    Source,
    SourceSpecError,
    open_source,
    scan_images,
)
from .splits import (
    ALL_SETS,
    FACE_TRAIN_SETS,
    OLD_PHOTO_SETS,
    TEST_SETS,
    TRAIN_SETS,
    check_not_test_set,
    shared_data_root,
    shared_set_path,
    which_test_set,
)

__all__ = [
    "ALL_SETS", "EMBEDDED_PHOTOS", "FACE_TRAIN_SETS", "OLD_PHOTO_SETS", "TEST_SETS", "TRAIN_SETS",
    "ConcatSource", "EmbeddedSource", "FileListSource", "FolderSource", "HFSource", "PairsDataset", "Sample",
    "Source", "SourceSpecError", "check_not_test_set", "collate", "open_source", "parse_hf_spec", "scan_images",
    "shared_data_root", "shared_set_path", "which_test_set",
]
