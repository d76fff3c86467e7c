"""The catalogue of pretrained weights the metrics need: where each file is looked for, how it is verified,
and how it is fetched. Nothing here touches the network unless :func:`fetch` is called.

Search order for a file (first hit wins):

1. ``weights_dir`` when a caller passes one (``--weights-dir`` / ``--dir``);
2. ``$OLDPHOTO_WEIGHTS`` when set;
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints`` (where torchvision, pytorch-fid and
   torch-fidelity put their downloads, honouring ``$TORCH_HOME``);
4. folders specific to the entry (e.g. the weights shipped inside the ``lpips`` package).

Every file is verified by SHA-256 before use: against the full digest when the catalogue knows it, else
against the digest prefix the file name carries (torchvision's convention, ``alexnet-owt-7be5be79.pth``:
the digest starts with ``7be5be79``). :func:`fetch` downloads to a temporary file in the destination
folder, verifies it and only then renames it into place, so a failed or corrupted download leaves nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..provenance import sha256_file, temp_file

ENV_DIR = "OLDPHOTO_WEIGHTS"
FETCH_HINT = "oldphoto-bench weights fetch"


class WeightsError(RuntimeError):
    """A weights file is missing, corrupted or could not be fetched."""


@dataclass(frozen=True)
class WeightsFile:
    """One catalogue entry. ``filenames[0]`` is the name :func:`fetch` writes; the others are names under
    which the same bytes are known to other tools (looked for too). ``sha256`` is the full digest when known;
    ``sha256_prefix`` the prefix the file name carries. ``extra_dirs``: callables returning extra folders."""

    key: str
    filenames: tuple[str, ...]
    url: str
    used_by: tuple[str, ...]
    description: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    extra_dirs: tuple[Callable[[], Path | None], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not (self.sha256 or self.sha256_prefix):
            raise ValueError(f"weights {self.key!r}: a catalogue entry needs sha256 or sha256_prefix")
        if not self.filenames:
            raise ValueError(f"weights {self.key!r}: needs at least one file name")

    @property
    def filename(self) -> str:
        return self.filenames[0]

    @property
    def expected_hash(self) -> str:
        """The full digest, or the prefix from the file name (what a file's digest must start with)."""
        return (self.sha256 or self.sha256_prefix or "").lower()


def _lpips_package_weights() -> Path | None:
    """``<site-packages>/lpips/weights/v0.1``, found without importing lpips."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "weights" / "v0.1"


CATALOGUE: dict[str, WeightsFile] = {
    e.key: e
    for e in (
        WeightsFile(
            key="alexnet",
            filenames=("alexnet-owt-7be5be79.pth",),
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            sha256_prefix="7be5be79",
            used_by=("lpips",),
            description="torchvision AlexNet ImageNet weights (IMAGENET1K_V1): the LPIPS backbone",
        ),
        WeightsFile(
            key="lpips-alex-v0.1",
            filenames=("alex.pth",),
            url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            # digest of the file shipped in the lpips 0.1.4 wheel
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            size=6009,
            used_by=("lpips",),
            description="LPIPS v0.1 linear layers on AlexNet (shipped inside the lpips package)",
            extra_dirs=(_lpips_package_weights,),
        ),
        WeightsFile(
            key="inception-fid",
            # pytorch-fid's and torch-fidelity's names for the same bytes (the 2015-12-05 TF Inception graph)
            filenames=("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth"),
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                "pt_inception-2015-12-05-6726825d.pth",
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            sha256_prefix="6726825d",
            size=95_628_359,
            used_by=("fid", "kid"),
            description="FID Inception-v3 (TensorFlow 2015-12-05 graph ported by pytorch-fid / torch-fidelity)",
        ),
    )
}


def get_entry(key: str, catalogue: Mapping[str, WeightsFile] | None = None) -> WeightsFile:
    cat = CATALOGUE if catalogue is None else catalogue
    try:
        return cat[key]
    except KeyError:
        raise KeyError(f"unknown weights {key!r}; valid names: {', '.join(sorted(cat))}") from None


def hub_checkpoints_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def default_dir() -> Path:
    """Where :func:`fetch` writes by default: ``$OLDPHOTO_WEIGHTS``, else the torch hub cache."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else hub_checkpoints_dir()


def search_dirs(entry: WeightsFile, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders looked in, in order (see the module docstring), without duplicates."""
    dirs: list[Path] = []
    if weights_dir is not None:
        dirs.append(Path(weights_dir).expanduser())
    if os.environ.get(ENV_DIR):
        dirs.append(Path(os.environ[ENV_DIR]).expanduser())
    dirs.append(hub_checkpoints_dir())
    for extra in entry.extra_dirs:
        d = extra()
        if d is not None:
            dirs.append(d)
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def candidates(entry: WeightsFile, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every path the file is looked for at, in order."""
    return [d / name for d in search_dirs(entry, weights_dir) for name in entry.filenames]


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest, so a file is hashed once


def file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key]


def digest_matches(digest: str, entry: WeightsFile) -> bool:
    return digest.lower().startswith(entry.expected_hash)


@dataclass(frozen=True)
class WeightsStatus:
    """What :func:`status` found. ``state``: "present" (verified), "corrupt" (found, wrong digest) or "missing"."""

    entry: WeightsFile
    state: str
    path: Path | None
    digest: str | None
    looked_in: tuple[Path, ...]

    def as_dict(self) -> dict[str, Any]:
        e = self.entry
        return {"name": e.key, "files": list(e.filenames), "url": e.url, "sha256": e.sha256,
                "sha256_prefix": e.sha256_prefix, "size": e.size, "used_by": list(e.used_by),
                "description": e.description, "state": self.state,
                "path": str(self.path) if self.path else None, "digest": self.digest,
                "looked_in": [str(p) for p in self.looked_in]}


def status(key: str, weights_dir: str | os.PathLike | None = None, verify: bool = True,
           catalogue: Mapping[str, WeightsFile] | None = None) -> WeightsStatus:
    """Find an entry's file; with ``verify`` check its SHA-256. The first verified candidate wins; when only
    corrupted copies exist the first of them is reported as "corrupt"."""
    entry = get_entry(key, catalogue)
    looked = tuple(candidates(entry, weights_dir))
    corrupt: tuple[Path, str] | None = None
    for path in looked:
        if not path.is_file():
            continue
        if not verify:
            return WeightsStatus(entry, "present", path, None, looked)
        digest = file_digest(path)
        if digest_matches(digest, entry):
            return WeightsStatus(entry, "present", path, digest, looked)
        corrupt = corrupt or (path, digest)
    if corrupt:
        return WeightsStatus(entry, "corrupt", corrupt[0], corrupt[1], looked)
    return WeightsStatus(entry, "missing", None, None, looked)


def require(key: str, weights_dir: str | os.PathLike | None = None,
            catalogue: Mapping[str, WeightsFile] | None = None) -> Path:
    """The verified path of an entry's file, or :class:`WeightsError` whose message names the file, where it
    was looked for and the command that fetches it."""
    st = status(key, weights_dir, verify=True, catalogue=catalogue)
    if st.state == "present" and st.path is not None:
        return st.path
    e = st.entry
    dirs = ", ".join(str(d) for d in search_dirs(e, weights_dir))
    if st.state == "corrupt":
        raise WeightsError(f"weights file {st.path} has SHA-256 {st.digest[:16]}..., expected "
                           f"{e.expected_hash[:16]}...; delete it and run `{FETCH_HINT} {e.key}`")
    raise WeightsError(f"weights file {e.filename} not found in {dirs} [{e.description}]; "
                       f"run `{FETCH_HINT} {e.key}` on a machine with internet, or pass its folder")


def fetch(key: str, dest_dir: str | os.PathLike | None = None, *, force: bool = False, timeout: float = 60.0,
          catalogue: Mapping[str, WeightsFile] | None = None,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download an entry to ``dest_dir`` (default :func:`default_dir`), verify its SHA-256 (and size when
    known), then rename it into place. An existing verified file is kept unless ``force``. On any failure the
    temporary file is removed and :class:`WeightsError` is raised. ``progress(bytes_done, total_or_None)``.
    """
    entry = get_entry(key, catalogue)
    scheme = urllib.parse.urlparse(entry.url).scheme
    if scheme not in ("http", "https"):
        raise WeightsError(f"weights {key!r}: refusing to fetch a {scheme or 'relative'} URL ({entry.url})")
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_dir()
    target = dest / entry.filename
    if target.is_file() and not force and digest_matches(file_digest(target), entry):
        return target
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(dest, entry.filename, suffix=".part")
    try:
        h, done = hashlib.sha256(), 0
        req = urllib.request.Request(entry.url, headers={"User-Agent": "oldphoto-bench"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            while block := resp.read(1 << 20):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total_n)
        digest = h.hexdigest()
        if not digest_matches(digest, entry):
            raise WeightsError(f"{entry.url}: downloaded SHA-256 {digest[:16]}... does not match the expected "
                               f"{entry.expected_hash[:16]}...; nothing was written")
        if entry.size is not None and done != entry.size:
            raise WeightsError(f"{entry.url}: downloaded {done} bytes, expected {entry.size}; nothing was written")
        os.replace(tmp, target)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WeightsError):
            raise WeightsError(f"{entry.url}: download failed: {e}") from e
        raise
    return target


def fetch_many(keys: Sequence[str] | None = None, dest_dir: str | os.PathLike | None = None,
               **kwargs: Any) -> dict[str, Path | WeightsError]:
    """Fetch several entries (all by default); each result is the path or the error (the others go on)."""
    cat = kwargs.get("catalogue") or CATALOGUE
    out: dict[str, Path | WeightsError] = {}
    for key in keys or list(cat):
        try:
            out[key] = fetch(key, dest_dir, **kwargs)
        except WeightsError as e:
            out[key] = e
    return out
