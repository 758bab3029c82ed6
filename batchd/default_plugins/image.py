"""Loader for PNG, JPEG, GIF and WebP images: sent to Claude as native ``image`` blocks.

The media type comes from the bytes, never the name: the API rejects an image whose
declared type does not match its content, and photos saved as ``.png`` that are really
JPEGs are common. Images the API would refuse (over 5 MB encoded) or shrink anyway (a
long edge over 1568 px, which only adds latency) are scaled down here, in their own
format where that is small enough, so what is sent is what Claude sees.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from batchd import sniff
from batchd.documents import Document, LoadError
from batchd.hookspecs import hookimpl
from batchd.text import is_text

#: Claude's recommended longest edge; larger images are downscaled by the API anyway.
MAX_EDGE = 1568
#: The API's limit is 5 MB of base64 per image; base64 is 4/3 of the raw bytes.
MAX_IMAGE_BYTES = 5 * 1024 * 1024 * 3 // 4
#: Beyond this many pixels (Pillow's own warning threshold, about 9500 px square) an image
#: is more likely a decompression bomb than a scan.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".webp"}
#: What Pillow calls each kind; MPO is the multi-picture JPEG some cameras write.
_PIL_FORMATS = {"png": {"PNG"}, "jpeg": {"JPEG", "MPO"}, "gif": {"GIF"}, "webp": {"WEBP"}}
_JPEG_QUALITIES = (85, 70, 55)


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes) -> Document | None:
    """An ``image`` Document for PNG/JPEG/GIF/WebP bytes, whatever the name; None for other files.

    A file with an image suffix that holds another known format (a BMP, a PDF) or text
    is left to the loader that knows it; one that holds nothing recognisable is corrupt.
    """
    kind = sniff.binary_kind(data)
    if kind not in sniff.API_IMAGE_TYPES:
        if path.suffix.lower() not in SUFFIXES:
            return None
        if not data.strip():
            raise LoadError("the file is empty")
        if kind is not None or is_text(data):
            return None
        raise LoadError("corrupt image: the content is not a PNG, JPEG, GIF or WebP image")
    return prepare_image(data, kind)


def prepare_image(data: bytes, kind: str) -> Document:
    """Check that the image decodes completely, then shrink it if the API would not take it as is."""
    image = _open(data, kind)
    try:
        if max(image.size) <= MAX_EDGE and len(data) <= MAX_IMAGE_BYTES:
            return Document(kind="image", media_type=sniff.API_IMAGE_TYPES[kind], data=data)
        shrunk, media_type = _shrink(image, kind, len(data))
    finally:
        image.close()
    return Document(kind="image", media_type=media_type, data=shrunk)


def _open(data: bytes, kind: str) -> Image.Image:
    """The image, fully decoded (only that finds a truncated JPEG); LoadError when it is damaged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            if image.format not in _PIL_FORMATS[kind]:
                raise LoadError(f"corrupt image: it starts like {sniff.describe(kind)} but is not one")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise LoadError(f"image too large: {width}x{height} pixels")
            if kind == "jpeg" and max(width, height) > MAX_EDGE:
                scale = MAX_EDGE / max(width, height)
                image.draft(image.mode, (int(width * scale) + 1, int(height * scale) + 1))
            image.load()
    except LoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise LoadError(f"image too large: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
            TypeError, ZeroDivisionError, MemoryError) as exc:
        raise LoadError(f"corrupt image: {_reason(exc)}") from exc
    return image


def _shrink(image: Image.Image, kind: str, original_bytes: int) -> tuple[bytes, str]:
    """Scaled to fit :data:`MAX_EDGE` and re-encoded, in the same format unless only JPEG is small enough.

    GIFs become PNGs: re-quantising to 256 colours after scaling looks worse and is no
    smaller. Only the first frame of an animation is kept; that is what Claude reads.
    """
    frame = ImageOps.exif_transpose(image) if kind == "jpeg" else image.copy()
    frame = _normalise_mode(frame)
    scale = MAX_EDGE / max(frame.size)
    if scale < 1:
        size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
    attempts: list[tuple[str, dict]] = {
        "jpeg": [("JPEG", {"quality": q, "optimize": True}) for q in _JPEG_QUALITIES],
        "png": [("PNG", {"optimize": True})] + [("JPEG", {"quality": q}) for q in _JPEG_QUALITIES],
        "gif": [("PNG", {"optimize": True})] + [("JPEG", {"quality": q}) for q in _JPEG_QUALITIES],
        "webp": [("WEBP", {"quality": q, "method": 4}) for q in _JPEG_QUALITIES],
    }[kind]
    smallest = original_bytes
    for pil_format, options in attempts:
        encoded = _encode(frame, pil_format, options)
        if len(encoded) <= MAX_IMAGE_BYTES:
            return encoded, "image/" + pil_format.lower()
        smallest = min(smallest, len(encoded))
    raise LoadError(f"image too large: {smallest / 1_000_000:.1f} MB even when scaled down to "
                    f"{frame.width}x{frame.height}; the API takes images up to 5 MB")


def _normalise_mode(image: Image.Image) -> Image.Image:
    """A mode that scales smoothly and saves as PNG, WebP and (after flattening) JPEG."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode in ("P", "PA"):
        transparent = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


def _encode(image: Image.Image, pil_format: str, options: dict) -> bytes:
    if pil_format == "JPEG" and image.mode not in ("RGB", "L"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        image = Image.alpha_composite(background, rgba).convert("RGB")
    out = io.BytesIO()
    image.save(out, pil_format, **options)
    return out.getvalue()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
