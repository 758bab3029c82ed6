"""What a file's bytes are, whatever its name says.

Loaders decide by content first and by suffix second: a photo saved as ``.pdf`` is still
a photo, and a file without a suffix is still a PDF when it starts like one. This module
names the binary formats people drop into folders, so that each loader can claim its own
and step aside for the others, and so that an unsupported file fails with words a person
recognises ("an Excel workbook") instead of "binary data".
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

#: Kind -> how to say it in an error message.
DESCRIPTIONS = {
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
    "bmp": "a BMP image",
    "tiff": "a TIFF image",
    "ico": "an icon file",
    "heic": "a HEIC image",
    "avif": "an AVIF image",
    "psd": "a Photoshop image",
    "docx": "a Word document",
    "docm": "a macro-enabled Word document",
    "xlsx": "an Excel workbook",
    "pptx": "a PowerPoint presentation",
    "odt": "an OpenDocument text",
    "ods": "an OpenDocument spreadsheet",
    "odp": "an OpenDocument presentation",
    "epub": "an EPUB e-book",
    "jar": "a Java archive",
    "zip": "a ZIP archive",
    "ole": "a legacy Microsoft Office file",
    "gzip": "a gzip archive",
    "bzip2": "a bzip2 archive",
    "xz": "an xz archive",
    "zstd": "a Zstandard archive",
    "7z": "a 7-Zip archive",
    "rar": "a RAR archive",
    "tar": "a tar archive",
    "sqlite": "an SQLite database",
    "executable": "an executable program",
    "wasm": "a WebAssembly module",
    "audio": "an audio file",
    "video": "a video file",
}

#: The image formats the Messages API takes as ``image`` blocks, by kind.
API_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}

_PREFIXES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"8BPS", "psd"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\x7fELF", "executable"),
    (b"\xcf\xfa\xed\xfe", "executable"),
    (b"\xce\xfa\xed\xfe", "executable"),
    (b"\xfe\xed\xfa\xce", "executable"),
    (b"\xfe\xed\xfa\xcf", "executable"),
    (b"\x00asm", "wasm"),
    (b"OggS", "audio"),
    (b"fLaC", "audio"),
    (b"\x1aE\xdf\xa3", "video"),
)

_RIFF = {b"WEBP": "webp", b"WAVE": "audio", b"AVI ": "video"}
_FTYP_IMAGES = {b"heic": "heic", b"heix": "heic", b"hevc": "heic", b"mif1": "heic", b"msf1": "heic",
                b"avif": "avif", b"avis": "avif"}
_FTYP_AUDIO = {b"M4A ", b"M4B ", b"M4P "}

_ODF = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/epub+zip": "epub",
}


def binary_kind(data: bytes) -> str | None:
    """The binary format ``data`` is in, as a key of :data:`DESCRIPTIONS`; None if not one we know.

    Text formats (HTML, e-mail, CSV, RTF) are never named here: whether bytes are text
    is :func:`batchd.text.decode_text`'s question.
    """
    if find_pdf_header(data) >= 0:
        return "pdf"
    for prefix, kind in _PREFIXES:
        if data.startswith(prefix):
            return kind
    if data[:4] == b"RIFF" and data[8:12] in _RIFF:
        return _RIFF[data[8:12]]
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _FTYP_IMAGES:
            return _FTYP_IMAGES[brand]
        return "audio" if brand in _FTYP_AUDIO else "video"
    if data[:2] == b"BM" and len(data) >= 26 and data[6:10] == b"\x00\x00\x00\x00":
        return "bmp"
    if data[:4] == b"\x00\x00\x01\x00" and len(data) >= 22:
        return "ico"
    if data[:2] == b"MZ" and b"\x00" in data[2:64]:
        return "executable"
    if data[:3] == b"ID3" and len(data) > 5 and data[3] < 0x10 and data[4] == 0:
        return "audio"
    if data[:3] == b"BZh" and data[3:4].isdigit():
        return "bzip2"
    if data[257:262] == b"ustar":
        return "tar"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return zip_kind(data)
    return None


def zip_kind(data: bytes) -> str:
    """Which ZIP-based format ``data`` is: docx, xlsx, pptx, OpenDocument, EPUB, JAR or a plain ZIP.

    Only the archive's directory is read; a ZIP too damaged to list is still "zip", so
    that a loader expecting one can say it is corrupt.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype").strip()
                if mimetype in _ODF:
                    return _ODF[mimetype]
            content_types = archive.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError, ValueError,
            NotImplementedError, RuntimeError):
        return "zip"
    if "word/document.xml" in names:
        return "docm" if b"macroEnabled" in content_types else "docx"
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "META-INF/MANIFEST.MF" in names:
        return "jar"
    return "zip"


def find_pdf_header(data: bytes) -> int:
    """Where the ``%PDF-1.x`` header starts, or -1.

    PDF readers accept up to a KiB of junk before it (printer commands, a MacBinary
    header); a text that merely mentions "%PDF-" near its start must not count, so junk
    is only allowed when it is binary or the file ends like a PDF.
    """
    at = data.find(b"%PDF-", 0, 1024)
    if at < 0 or data[at + 5:at + 6] not in (b"1", b"2"):
        return -1
    if at == 0 or b"%%EOF" in data[-2048:] or any(b < 9 or 13 < b < 32 for b in data[:at]):
        return at
    return -1


#: Legacy Office files share one container format; their suffix tells them apart.
_OLE_BY_SUFFIX = {".doc": "a legacy Word document (Word 97-2003)",
                  ".dot": "a legacy Word template (Word 97-2003)",
                  ".xls": "a legacy Excel workbook (Excel 97-2003)",
                  ".ppt": "a legacy PowerPoint presentation (PowerPoint 97-2003)",
                  ".msg": "an Outlook message"}


def describe(kind: str | None, suffix: str = "") -> str:
    """How to name ``kind`` to a person; ``None`` is "binary data"."""
    if kind == "ole" and suffix.lower() in _OLE_BY_SUFFIX:
        return _OLE_BY_SUFFIX[suffix.lower()]
    return DESCRIPTIONS.get(kind or "", "binary data")


def suffix_words(suffix: str) -> str:
    """A file's suffix as shown in reasons: ``.xyz``, or ``no suffix``."""
    return suffix.lower() if suffix else "no suffix"


def claims(path: Path, data: bytes, suffixes: set[str], recognised: bool) -> bool:
    """Whether a text-format loader takes a file: its content is recognised, or it bears
    the loader's suffix and is no other known binary format (which goes to its own loader).

    An empty file with the suffix is the loader's, and fails as empty.
    """
    if recognised:
        return True
    if path.suffix.lower() not in suffixes:
        return False
    if not data.strip():
        from batchd.documents import LoadError

        raise LoadError("the file is empty")
    return binary_kind(data) is None
