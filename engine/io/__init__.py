"""Readers and writers of motion files, one module per format, and the entry points that dispatch to them.

- :func:`load_clip` reads one clip from any supported file (format detected from the extension and the
  content); :func:`load_dataset` reads a labelled collection of clips.
- :func:`save_clip` / :func:`save_dataset` write by extension.
- :func:`detect_format` names a file's format; :data:`FORMATS` describes every supported one.

Format modules are imported lazily, so ``import engine.io`` is cheap. The schemas are in ``docs/formats.md``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from engine.data import Clip, ClipDataset
from engine.errors import DataFormatError, UnsupportedFormatError

__all__ = [
    "FORMATS",
    "detect_format",
    "find_asf",
    "load_clip",
    "load_dataset",
    "save_clip",
    "save_dataset",
]

log = logging.getLogger(__name__)

#: format name → (file extensions, what it is). ``folder`` is a directory.
FORMATS: dict[str, tuple[tuple[str, ...], str]] = {
    "ntu-skeleton": ((".skeleton",), "NTU RGB+D Kinect v2 skeleton text file"),
    "acclaim-amc": ((".amc",), "Acclaim motion (HDM05, CMU), read with its .asf skeleton"),
    "acclaim-asf": ((".asf",), "Acclaim skeleton"),
    "bvh": ((".bvh",), "BioVision Hierarchy motion"),
    "smart-npz": ((".npz",), "SMART/BEAT arrays: clips (N, T, 75) + classes, with preprocess_core.npz, classes.txt"),
    "stgcn-npy": ((".npy",), "ST-GCN/MS-G3D array (N, C, T, V, M) + label .pkl"),
    "skelviz-h5": ((".h5", ".hdf5"), "skelviz clip/dataset file (HDF5)"),
    "positions-h5": ((".h5", ".hdf5"), "HDF5 positions layout (shared cmu8): one (T, V, 3) dataset per clip"),
    "folder": ((), "folder of .asf/.amc, .bvh, .skeleton files with a labels.csv (columns file,label)"),
}
CLIP_WRITERS = {".h5": "skelviz-h5", ".hdf5": "skelviz-h5", ".bvh": "bvh", ".npz": "smart-npz"}
DATASET_WRITERS = {".h5": "skelviz-h5", ".hdf5": "skelviz-h5", ".npz": "smart-npz"}
_BINARY = {"skelviz-h5", "positions-h5", "smart-npz", "stgcn-npy"}


def _supported_list() -> str:
    return "; ".join(
        f"{', '.join(ext) if ext else 'a folder'} ({desc})" for name, (ext, desc) in FORMATS.items()
    )


def _sniff_text(head: bytes) -> str | None:
    text = head.decode("latin-1", errors="replace")
    stripped = text.lstrip()
    if stripped.upper().startswith("HIERARCHY"):
        return "bvh"
    lowered = text.lower()
    if ":bonedata" in lowered or ":version" in lowered or ":units" in lowered:
        return "acclaim-asf"
    if ":fully-specified" in lowered or ":degrees" in lowered or ":radians" in lowered:
        return "acclaim-amc"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) >= 2 and lines[0].isdigit() and lines[1].isdigit():
        return "ntu-skeleton"
    if len(lines) >= 2 and lines[0].isdigit() and lines[1].split()[0].lower() == "root":
        return "acclaim-amc"
    return None


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise DataFormatError(path, "the file is empty")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        from engine.io import h5

        return h5.probe(path)
    if head.startswith(b"\x93NUMPY"):
        return "stgcn-npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "smart-npz"
    return _sniff_text(head)


def detect_format(path: str | Path) -> str:
    """The format name (a key of :data:`FORMATS`) of a file or folder, by extension and content.

    Raises :class:`DataFormatError` for a missing or empty file, or one whose content contradicts its
    extension, and :class:`UnsupportedFormatError` when nothing matches.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file or folder", hint="check the path")
    if path.is_dir():
        return "folder"
    ext = path.suffix.lower()
    by_ext = [name for name, (exts, _) in FORMATS.items() if ext in exts]
    content = _sniff(path)
    if content is not None:
        if by_ext and content not in by_ext:
            if content in _BINARY or any(f in _BINARY for f in by_ext):
                log.warning("%s: extension %s but the content is %s; reading it as %s", path, ext, content, content)
        return content
    if by_ext:
        if any(f in _BINARY for f in by_ext):
            what = "HDF5" if ext in (".h5", ".hdf5") else ("a NumPy .npy array" if ext == ".npy" else "a .npz archive")
            raise DataFormatError(path, f"the extension says {what}, but the content is not", hint="the file is corrupt or misnamed")
        return by_ext[0]
    raise UnsupportedFormatError(f"{path}: unknown motion file format. Supported: {_supported_list()}")


def find_asf(amc: str | Path) -> Path | None:
    """The ASF skeleton for an AMC motion: the only .asf beside it, or the one whose name prefixes the AMC's."""
    from engine.io.acclaim import find_asf as _find_asf

    return _find_asf(amc)


#: builtin exceptions a reader may still raise on a file nobody anticipated; load_clip/load_dataset report them
#: as a DataFormatError naming the file (the readers raise specific errors for every case they know)
_UNFORESEEN = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, RecursionError, MemoryError,
               UnicodeError, OverflowError, AttributeError)


@contextmanager
def _reading(path: Path):
    """Turn an unforeseen builtin exception while reading ``path`` into a DataFormatError naming it."""
    from engine.errors import SkelvizError

    try:
        yield
    except SkelvizError:
        raise
    except _UNFORESEEN as exc:
        log.debug("unforeseen error reading %s", path, exc_info=True)
        raise DataFormatError(
            path, f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})",
            hint="the file is malformed; if it should be readable, report it with the file",
        ) from None


def load_clip(path: str | Path, *, asf: str | Path | None = None, units: str | float | None = None,
              index: int = 0, **kw) -> Clip:
    """Read one clip from any supported file.

    ``asf`` names the skeleton of an AMC motion (default: found beside it, see :func:`find_asf`); ``units``
    overrides BVH unit detection; ``index`` picks the clip of a multi-clip file (``.npz``, ``.npy``, HDF5
    dataset, folder). Other keywords go to the format reader (e.g. ``skeleton=`` for ``.npy``). Every problem
    with the file is a :class:`~engine.errors.SkelvizError` naming it.
    """
    path = Path(path)
    with _reading(path):
        return _load_clip(path, asf=asf, units=units, index=index, **kw)


def _load_clip(path: Path, *, asf, units, index: int, **kw) -> Clip:
    fmt = detect_format(path)
    if fmt == "ntu-skeleton":
        from engine.io.ntu import read_ntu

        return read_ntu(path)
    if fmt == "acclaim-amc":
        from engine.io.acclaim import read_amc

        return read_amc(path, asf=asf if asf is not None else find_asf(path), fps=kw.get("fps"))
    if fmt == "acclaim-asf":
        from engine.io.acclaim import read_asf

        result = read_asf(path)
        if isinstance(result, Clip):
            return result
        raise UnsupportedFormatError(
            f"{path}: an .asf file holds a skeleton, not a motion; open the .amc motion (with --asf {path.name})"
        )
    if fmt == "bvh":
        from engine.io.bvh import read_bvh

        return read_bvh(path, units=units)
    if fmt in ("skelviz-h5", "positions-h5"):
        from engine.io import h5

        return h5.read_h5_clip(path, index, **kw)
    if fmt == "smart-npz":
        from engine.io import npz

        return npz.read_smart_clip(path, index, **kw)
    if fmt == "stgcn-npy":
        from engine.io import stgcn

        return stgcn.read_stgcn_clip(path, index, **kw)
    if fmt == "folder":
        from engine.io import folder

        ds = folder.read_folder(path, **kw)
        if not -len(ds) <= index < len(ds):
            raise DataFormatError(path, f"clip index {index} out of range: the folder holds {len(ds)} clips")
        return ds[index]
    raise UnsupportedFormatError(f"{path}: no reader for format {fmt!r}. Supported: {_supported_list()}")


def load_dataset(path: str | Path, **kw) -> ClipDataset:
    """Read a labelled collection of clips: a project or positions-layout HDF5 file, a SMART ``.npz``, an
    ST-GCN ``.npy`` (+ label ``.pkl``), or a folder with ``labels.csv``. A single-clip file gives a dataset
    of one clip. Keywords go to the format reader. Every problem with the file is a
    :class:`~engine.errors.SkelvizError` naming it."""
    path = Path(path)
    with _reading(path):
        return _load_dataset(path, **kw)


def _load_dataset(path: Path, **kw) -> ClipDataset:
    fmt = detect_format(path)
    if fmt in ("skelviz-h5", "positions-h5"):
        from engine.io import h5

        return h5.read_h5_dataset(path, **kw)
    if fmt == "smart-npz":
        from engine.io import npz

        return npz.read_smart_npz(path, **kw)
    if fmt == "stgcn-npy":
        from engine.io import stgcn

        return stgcn.read_stgcn(path, **kw)
    if fmt == "folder":
        from engine.io import folder

        return folder.read_folder(path, **kw)
    clip = load_clip(path, **kw)
    return ClipDataset([clip], name=path.stem, source=str(path))


def save_clip(clip: Clip, path: str | Path, **kw) -> Path:
    """Write one clip by extension: ``.h5``/``.hdf5`` (project format), ``.bvh``, ``.npz`` (SMART layout)."""
    path = Path(path)
    fmt = CLIP_WRITERS.get(path.suffix.lower())
    if fmt == "skelviz-h5":
        from engine.io import h5

        return h5.save_clip_h5(clip, path, **kw)
    if fmt == "bvh":
        from engine.io.bvh import write_bvh

        write_bvh(clip, path, **kw)
        return path
    if fmt == "smart-npz":
        from engine.io import npz

        return npz.write_smart_clip(clip, path, **kw)
    raise UnsupportedFormatError(
        f"{path}: cannot write {path.suffix or 'files without an extension'}; "
        f"clips are written as {', '.join(CLIP_WRITERS)}"
    )


def save_dataset(dataset: ClipDataset, path: str | Path, **kw) -> Path:
    """Write a dataset by extension: ``.h5``/``.hdf5`` (project format, one file) or ``.npz`` (SMART layout,
    clips of equal length)."""
    path = Path(path)
    fmt = DATASET_WRITERS.get(path.suffix.lower())
    if fmt == "skelviz-h5":
        from engine.io import h5

        return h5.save_dataset_h5(dataset, path, **kw)
    if fmt == "smart-npz":
        from engine.io import npz

        return npz.write_smart_dataset(dataset, path, **kw)
    raise UnsupportedFormatError(
        f"{path}: cannot write a dataset as {path.suffix or 'a file without an extension'}; "
        f"datasets are written as {', '.join(DATASET_WRITERS)}"
    )
