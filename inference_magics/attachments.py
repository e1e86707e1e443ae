"""Images and PDFs for a prompt: a file path, PNG/JPEG/GIF/WebP/PDF bytes, a PIL image or a
matplotlib Figure become one `Attachment` (bytes + media type). Each backend encodes them as its
protocol expects (backends/*.py); this module never talks to a model.

A request that carries attachments is judged (and routed) by its text together with the text
its attachments hold (`scannable_text`: a PDF's page text and metadata, through pypdf; text
chunks and metadata in images), so a report whose text holds a key stays on this machine like a
prompt that does. Pixels are not read (no OCR): a screenshot of a key is not seen.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from dataclasses import dataclass, field

from .errors import ConfigError

MAX_BYTES = 20 * 1024 * 1024  # larger than any API takes in one request (Claude: 5 MB an image, 32 MB a request)
# the first bytes that tell each kind (what the APIs accept: PNG, JPEG, GIF, WebP images; PDF documents)
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))
PDF = "application/pdf"


@dataclass(frozen=True)
class Attachment:
    data: bytes = field(repr=False)
    mime: str                 # image/png, image/jpeg, image/gif, image/webp or application/pdf
    name: str = ""            # where it came from, for messages ("figure 1", "chart.png")

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.b64()}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> str:
        return f"{self.name or self.mime} ({self.mime}, {len(self.data):,} bytes)"


def sniff(data: bytes) -> str | None:
    """The media type from the first bytes, or None when it is none of the accepted kinds."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def load(value, name: str = "") -> Attachment:
    """One attachment from a path, bytes, a PIL image, a matplotlib Figure (or an Attachment)."""
    if isinstance(value, Attachment):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(value), name or "bytes")
    if isinstance(value, (str, os.PathLike)):
        return _from_path(os.fspath(value))
    if hasattr(value, "savefig"):  # a matplotlib Figure (duck-typed: no matplotlib import here)
        return _from_bytes(figure_png(value), name or "figure")
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return _from_bytes(buffer.getvalue(), name or "image")
    raise ConfigError(f"cannot attach {name or 'a'} {type(value).__name__} — give a file path, PNG/JPEG bytes, a PIL "
                      "image or a matplotlib Figure (--figure for the current one).")


def load_all(values) -> tuple[Attachment, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, bytes, os.PathLike)) or not hasattr(values, "__iter__"):
        values = [values]
    return tuple(load(v) for v in values)


def figure_png(figure) -> bytes:
    """The PNG a figure draws (what the notebook shows inline: its own DPI, tight box)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def current_figure() -> Attachment:
    """matplotlib's current figure (plt.gcf()), when one has been drawn."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")  # never imported here: no figure exists without it
    if pyplot is None or not pyplot.get_fignums():
        raise ConfigError("--figure: there is no current matplotlib figure — draw one first, or pass it as "
                          "--image VAR (a Figure variable); with the inline backend keep it open with fig = plt.gcf().")
    return _from_bytes(figure_png(pyplot.gcf()), "the current figure")


def _from_path(path: str) -> Attachment:
    if os.path.isdir(path):
        raise ConfigError(f"cannot attach {path!r}: it is a folder — give the path of one image (PNG, JPEG, GIF, "
                          "WebP) or a PDF in it.")
    if not os.path.isfile(path):
        raise ConfigError(f"cannot attach {path!r}: no such file — give the path of an image (PNG, JPEG, GIF, WebP) "
                          "or a PDF.")
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise ConfigError(f"cannot attach {path!r}: {size:,} bytes is more than {MAX_BYTES // 2**20} MB — shrink it.")
    with open(path, "rb") as handle:
        return _from_bytes(handle.read(), os.path.basename(path))


def _from_bytes(data: bytes, name: str) -> Attachment:
    if len(data) > MAX_BYTES:
        raise ConfigError(f"cannot attach {name}: {len(data):,} bytes is more than {MAX_BYTES // 2**20} MB — shrink it.")
    mime = sniff(data)
    if mime is None:
        raise ConfigError(f"cannot attach {name}: it is not a PNG, JPEG, GIF, WebP image or a PDF (by its first "
                          "bytes) — convert it to PNG first.")
    return Attachment(data, mime, name)


_PRINTABLE_RUN = re.compile(rb"[\t\x20-\x7e]{8,}")


def scannable_text(attachments) -> str:
    """The text the attachments carry, for the privacy detector: the printable runs in their bytes
    (PNG text chunks, JPEG comments and EXIF, an uncompressed PDF — not the noise of compressed
    pixels) and, for a PDF, the text of its pages and its metadata as pypdf extracts it (compressed
    streams, TrueType and CID fonts through their ToUnicode maps). Pixels are not read (no OCR): a
    screenshot of a key is not seen."""
    pieces = []
    for attachment in attachments or ():
        pieces += [run.decode("ascii") for run in _PRINTABLE_RUN.findall(attachment.data)]
        if attachment.mime == PDF:
            pieces.append(_pdf_text(attachment.data))
    return "\n".join(pieces)


def _pdf_text(data: bytes) -> str:
    import logging

    from pypdf import PdfReader  # imported on the first PDF: %load_ext stays light

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a malformed PDF's repairs are not the user's business
    try:
        reader = PdfReader(io.BytesIO(data))
        texts = [page.extract_text() or "" for page in reader.pages]
        texts += [str(value) for value in (reader.metadata or {}).values()]
    except Exception:  # noqa: BLE001 — a PDF pypdf cannot open (no xref, damaged): what its streams hold
        return _inflated_streams(data)
    return "\n".join(texts)


def _inflated_streams(data: bytes) -> str:
    """Best effort for a PDF pypdf cannot open: the printable runs of its Flate streams, inflated
    up to MAX_BYTES in all (a compression bomb stops there)."""
    import zlib

    texts, budget = [], MAX_BYTES
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            inflated = zlib.decompressobj().decompress(match.group(1), budget)
        except zlib.error:
            continue
        texts += [run.decode("ascii") for run in _PRINTABLE_RUN.findall(inflated)]
        budget -= len(inflated)
        if budget <= 0:
            break
    return "\n".join(texts)
