"""Refuse short or corrupt image files before SimpleITK reads them.

SimpleITK 2.5 (ITK 5.4) reads a ``.nii``/``.nii.gz`` cut short with the
missing voxels set to 0, and its MetaImage and NRRD readers do not verify the
checksums of compressed data, so a damaged file reads as a plausible volume.
:func:`verify_file` therefore checks every file against its own header first:

=============  ===========================================================
format         check
=============  ===========================================================
NIfTI          header + voxel bytes present (``vox_offset + prod(dim) *
               bitpix / 8``); a gzip stream must be complete (CRC-32 and
               length checked by zlib)
MetaImage      ``DimSize`` x ``ElementType`` x channels bytes present; a
               compressed (zlib) stream must be complete (Adler-32)
NRRD           ``sizes`` x ``type`` bytes present; gzip/bzip2 streams complete
=============  ===========================================================

The stream check inflates the data once more (about 0.1 s per 100 MB of
voxels); uncompressed files cost one ``stat``. DICOM series are checked in
:mod:`flare_uda.data.dicom`.
"""

from __future__ import annotations

import bz2
import os
import struct
import zlib
from pathlib import Path

import numpy as np

CHUNK = 1 << 20
"""Bytes read (and at most inflated) per step; keeps memory flat on any file."""

GZIP_MAGIC = b"\x1f\x8b"

_MET_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
    "MET_UINT": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}  # fmt: skip
"""Bytes per element of MetaImage types (``MET_LONG`` is platform-dependent: not checked)."""


class CorruptFileError(ValueError):
    """An image file is shorter than its header says, or its compressed data is damaged."""


def _fail(path: Path, expected: str, got: str) -> CorruptFileError:
    return CorruptFileError(
        f"could not read {path}: truncated or corrupt, expected {expected}, got {got}; "
        "copy or download it again"
    )


def inflated_size(path: Path, offset: int = 0, head: int = 0) -> tuple[int, bytes]:
    """Size of the data inflated from ``path[offset:]`` (gzip or zlib), and its first bytes.

    Concatenated gzip members are followed; trailing zero padding is allowed.

    Parameters
    ----------
    path : Path
    offset : int
        Byte where the compressed stream starts.
    head : int
        How many leading inflated bytes to return too (e.g. a NIfTI header).

    Raises
    ------
    CorruptFileError
        If the stream ends early, fails its checksum, or is followed by other bytes.
    """
    total, first = 0, b""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, auto-detected
    with open(path, "rb") as fh:
        fh.seek(offset)
        pending = b""
        while True:
            if not pending:
                pending = fh.read(CHUNK)
                if not pending:
                    if not inflater.eof:
                        raise _fail(path, "a complete compressed stream", "an early end of file")
                    return total, first
            if inflater.eof:  # another gzip member, zero padding, or garbage
                if pending.startswith(GZIP_MAGIC):
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
                elif not pending.strip(b"\0"):
                    pending = b""
                    continue
                else:
                    raise _fail(path, "the end of file after the compressed data", "more bytes")
            try:
                out = inflater.decompress(pending, CHUNK)
            except zlib.error as err:
                raise _fail(path, "valid compressed data", f"zlib error '{err}'") from None
            if len(first) < head:
                first += out[: head - len(first)]
            total += len(out)
            pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail


def _require_bytes(path: Path, what: str, expected: int, got: int) -> None:
    if got < expected:
        raise _fail(path, f"{expected} bytes of {what}", f"{got}")


# ---------------------------------------------------------------------- NIfTI
def nifti_data_end(header: bytes, path: Path) -> int:
    """``vox_offset + voxels * bitpix / 8`` of a NIfTI-1 or NIfTI-2 header (either byte order).

    Raises
    ------
    ValueError
        If ``header`` is not a NIfTI header (:class:`CorruptFileError` if it is cut short).
    """
    sizes = {struct.unpack(o + "i", header[:4])[0]: o for o in "<>"} if len(header) >= 4 else {}
    if not {348, 540} & set(sizes):
        raise ValueError(
            f"could not read {path}: expected a NIfTI header (sizeof_hdr 348 or 540), "
            f"got {header[:16]!r}; is it a NIfTI file?"
        )
    version = 348 if 348 in sizes else 540
    order = sizes[version]
    if len(header) < version:
        raise _fail(path, f"a {version}-byte NIfTI header", f"{len(header)} bytes")
    if version == 348:
        dims = struct.unpack(order + "8h", header[40:56])
        bitpix = struct.unpack(order + "h", header[72:74])[0]
        offset = int(struct.unpack(order + "f", header[108:112])[0])
    else:
        bitpix = struct.unpack(order + "h", header[14:16])[0]
        dims = struct.unpack(order + "8q", header[16:80])
        offset = struct.unpack(order + "q", header[168:176])[0]
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        raise ValueError(
            f"could not read {path}: expected dim[0] in 1..7 in its header, got {ndim}"
        )
    voxels = int(np.prod([max(int(d), 1) for d in dims[1 : ndim + 1]]))
    return max(offset, version + 4) + voxels * max(int(bitpix), 8) // 8


def _verify_nifti(path: Path, compressed: bool) -> None:
    if compressed:
        size, header = inflated_size(path, head=544)
    else:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = fh.read(544)
    _require_bytes(path, "NIfTI header and voxels", nifti_data_end(header, path), size)


# ------------------------------------------------------------ MetaImage, NRRD
def _read_header(path: Path, end_of: callable) -> tuple[dict[str, str], int]:
    """Text header lines ``key <sep> value`` until ``end_of(key, value, line)``; its byte length."""
    fields: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as fh:
        for raw in iter(lambda: fh.readline(1 << 16), b""):
            offset += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            key, value = _split_field(line)
            if key is not None:
                fields[key] = value
            if end_of(key, value, line):
                return fields, offset
    return fields, -1


def _split_field(line: str) -> tuple[str | None, str]:
    for sep in (":=", ": ", " = ", "="):
        if sep in line:
            key, value = line.split(sep, 1)
            return key.strip().lower(), value.strip()
    return None, ""


def _check_payload(path: Path, offset: int, expected: int | None, encoding: str) -> None:
    """Check ``expected`` data bytes (``None``: unknown) from ``offset`` in ``encoding``."""
    if encoding in ("gzip", "gz", "zlib"):
        size = inflated_size(path, offset)[0]
    elif encoding in ("bzip2", "bz2"):
        size = _bz2_size(path, offset)
    elif encoding == "raw":
        size = path.stat().st_size - offset
    else:  # ascii/hex text: the reader checks the count itself
        return
    if expected is not None:
        _require_bytes(path, "voxel data", expected, size)


def _bz2_size(path: Path, offset: int) -> int:
    total, unbz = 0, bz2.BZ2Decompressor()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while not unbz.eof:
            chunk = fh.read(CHUNK) if unbz.needs_input else b""
            if unbz.needs_input and not chunk:
                raise _fail(path, "a complete bzip2 stream", "an early end of file")
            try:
                total += len(unbz.decompress(chunk, CHUNK))
            except OSError as err:
                raise _fail(path, "valid bzip2 data", f"'{err}'") from None
    return total


def _data_file(path: Path, name: str) -> Path | None:
    """A detached data file named in a header, or ``None`` for lists and patterns."""
    if not name or " " in name or "%" in name or name.upper() == "LIST":
        return None
    return path.parent / name


def _check_detached(
    header: Path, data: Path, expected: int | None, encoding: str, offset: int = 0
) -> None:
    """:func:`_check_payload` of a detached data file; the error names the header too."""
    try:
        _check_payload(data, offset, expected, encoding)
    except CorruptFileError as err:
        raise CorruptFileError(f"{err} (the data file of {header.name})") from None


def _verify_meta(path: Path) -> None:
    fields, offset = _read_header(path, lambda key, *_: key == "elementdatafile")
    if offset < 0:
        raise _fail(path, "a MetaImage header ending in ElementDataFile", "none")
    dims = [int(v) for v in fields.get("dimsize", "0").split()]
    per = _MET_BYTES.get(fields.get("elementtype", "").upper())
    channels = int(fields.get("elementnumberofchannels", "1"))
    expected = None if per is None else int(np.prod(dims)) * per * channels
    compressed = fields.get("compresseddata", "false").lower() == "true"
    name = fields["elementdatafile"]
    if name.upper() != "LOCAL":
        data = _data_file(path, name)
        if data is None:
            return
        if not data.is_file():
            raise _fail(path, f"its data file {data.name}", "no such file")
        return _check_detached(path, data, expected, "zlib" if compressed else "raw")
    _check_payload(path, offset, expected, "zlib" if compressed else "raw")


def _nrrd_type_bytes(kind: str) -> int | None:
    kind = kind.lower()
    for words, size in (
        (("double",), 8), (("float",), 4), (("long long", "longlong", "int64"), 8),
        (("char", "int8"), 1), (("short", "int16"), 2), (("int",), 4),
    ):  # fmt: skip
        if any(w in kind for w in words):
            return size
    return None


def _verify_nrrd(path: Path) -> None:
    fields, offset = _read_header(path, lambda key, value, line: line == "")
    if not fields.get("sizes"):
        raise _fail(path, "an NRRD header with 'sizes'", "none")
    per = _nrrd_type_bytes(fields.get("type", ""))
    voxels = int(np.prod([int(v) for v in fields["sizes"].split()]))
    expected = None if per is None else voxels * per
    name = fields.get("data file") or fields.get("datafile")
    if name:
        data = _data_file(path, name)
        if data is None:
            return
        if not data.is_file():
            raise _fail(path, f"its data file {data.name}", "no such file")
        offset = 0
    elif offset < 0:
        raise _fail(path, "an empty line ending the NRRD header", "none")
    skip = max(int(fields.get("byte skip", "0")), 0)
    encoding = fields.get("encoding", "raw").lower()
    if name:
        return _check_detached(path, data, expected, encoding, skip)
    _check_payload(path, offset + skip, expected, encoding)


def verify_file(path: str | os.PathLike) -> None:
    """Raise :class:`CorruptFileError` if an image file is short or damaged.

    NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``, ``.mhd``) and NRRD
    (``.nrrd``, ``.nhdr``) are checked; other files pass unchanged.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        with open(path, "rb") as fh:
            compressed = fh.read(2) == GZIP_MAGIC
        _verify_nifti(path, compressed)
    elif name.endswith((".mha", ".mhd")):
        _verify_meta(path)
    elif name.endswith((".nrrd", ".nhdr")):
        _verify_nrrd(path)
