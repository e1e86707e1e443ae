"""Images and PDFs for a prompt: a file path, PNG/JPEG/GIF/WebP/PDF bytes, a PIL image or a
matplotlib Figure become one `Attachment` (bytes + media type). Each backend encodes them as its
protocol expects (backends/*.py); this module never talks to a model.

A request that carries attachments is judged (and routed) by its text together with the text
its attachments hold (`scannable_text`: every text a PDF carries, through pypdf; text chunks and
metadata in images, compressed or UTF-16 ones too), so a report whose text holds a key stays on
this machine like a prompt that does. The whole file is sent, so what no page shows counts as
well. Pixels are not read (no OCR): a screenshot of a key is not seen.
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
# the same runs as UTF-16 in either byte order (Windows' EXIF XPComment, EXIF UserComment "UNICODE")
_UTF16_RUNS = ((re.compile(rb"(?:[\t\x20-\x7e]\x00){8,}"), "utf-16-le"),
               (re.compile(rb"(?:\x00[\t\x20-\x7e]){8,}"), "utf-16-be"))


def _runs(data: bytes) -> list[str]:
    """The printable text in bytes: ASCII runs and UTF-16 runs (not the noise of compressed pixels)."""
    found = [run.decode("ascii") for run in _PRINTABLE_RUN.findall(data)]
    for pattern, codec in _UTF16_RUNS:
        found += [run.decode(codec) for run in pattern.findall(data)]
    return found


def scannable_text(attachments) -> str:
    """The text the attachments carry, for the privacy detector. The whole file leaves with the
    request, so this is all of its text, not only what a page shows: the printable runs in its bytes
    (PNG text chunks, JPEG comments and EXIF, an uncompressed PDF), a PNG's compressed text chunks,
    and for a PDF every string, name and decoded stream pypdf finds in it (page text, metadata,
    annotations, form fields, bookmarks, embedded files, XMP; hex and UTF-16 strings; compressed
    streams, TrueType and CID fonts through their ToUnicode maps). Pixels are not read (no OCR): a
    screenshot of a key is not seen."""
    pieces = []
    for attachment in attachments or ():
        pieces += _runs(attachment.data)
        if attachment.mime == PDF:
            pieces.append(_pdf_text(attachment.data))
        elif attachment.mime == "image/png":
            pieces += _png_text(attachment.data)
    return "\n".join(pieces)


def _inflate(data: bytes, budget: int) -> bytes:
    """zlib data inflated to at most `budget` bytes (a compression bomb stops there); b"" if it is not zlib."""
    import zlib

    try:
        return zlib.decompressobj().decompress(data, max(budget, 0))
    except zlib.error:
        return b""


def _png_text(data: bytes) -> list[str]:
    """A PNG's compressed text chunks (zTXt, and iTXt with its compression flag), inflated."""
    texts, at, budget = [], 8, MAX_BYTES
    while at + 8 <= len(data) and budget > 0:
        length, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        at += 12 + length
        if kind not in (b"zTXt", b"iTXt"):
            continue
        rest = body.partition(b"\0")[2]
        if kind == b"zTXt":  # compression method, then zlib data
            text = _inflate(rest[1:], budget)
        else:  # compression flag and method, language, translated keyword, then the text
            flag, rest = rest[:1], rest[2:]
            text = rest.partition(b"\0")[2].partition(b"\0")[2]
            text = _inflate(text, budget) if flag == b"\x01" else text
        budget -= len(text)
        texts.append(text.decode("utf-8", "replace"))
    return texts


def _pdf_text(data: bytes) -> str:
    import logging

    from pypdf import PdfReader  # imported on the first PDF: %load_ext stays light

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a malformed PDF's repairs are not the user's business
    try:
        reader = PdfReader(io.BytesIO(data))
        texts = [page.extract_text() or "" for page in reader.pages]
        texts += [str(value) for value in (reader.metadata or {}).values()]
        texts += _pdf_objects(reader)
    except Exception:  # noqa: BLE001 — a PDF pypdf cannot open (no xref, damaged): what its streams hold
        return _inflated_streams(data)
    return "\n".join(texts)


# streams whose bytes are data rather than drawing: their printable text is what they say
_DATA_KEYS = frozenset({"/EF", "/JS", "/Metadata", "/XFA"})  # embedded files, JavaScript, XMP, XFA forms
_DATA_TYPES = frozenset({"/EmbeddedFile", "/Metadata"})
# streams read here for no text: pixels, fonts (programs, glyphs, code maps), colour profiles, the file's own structure
# (and, below, what the pages draw, which is their extracted text)
_BINARY_KEYS = frozenset({"/FontFile", "/FontFile2", "/FontFile3", "/ICCBased", "/ToUnicode", "/CharProcs"})
_BINARY_TYPES = frozenset({"/XRef", "/ObjStm"})


def _pdf_objects(reader) -> list[str]:
    """Every string and name in every object of the file, what every drawing (a page, an
    annotation's or a form field's appearance, a glyph) writes, and the printable text of every
    data stream (embedded files, XMP, JavaScript), decoded up to MAX_BYTES in all: what the pages
    do not show (an annotation, a form field's value, a bookmark, an attached file) is sent all the
    same. Drawings give only their strings: their numbers are coordinates, not card numbers."""
    from pypdf.generic import ContentStream, IndirectObject, StreamObject

    numbers = {(number, generation) for generation, table in reader.xref.items() for number in table}
    numbers |= {(number, 0) for number in getattr(reader, "xref_objStm", {})}
    texts, streams, data, binary = [], {}, set(), set()

    def referenced(value) -> list[int]:
        found, stack = [], [value]
        while stack:
            item = stack.pop()
            if isinstance(item, IndirectObject):
                found.append(item.idnum)
            elif isinstance(item, dict):
                stack += item.values()
            elif isinstance(item, list):
                stack += item
        return found

    for number, generation in sorted(numbers):
        try:
            stack = [reader.get_object(IndirectObject(number, generation, reader))]
        except Exception:  # noqa: BLE001 — one damaged object: the others still count
            continue
        if isinstance(stack[0], StreamObject):
            streams[number] = stack[0]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):  # references are not followed: each object is visited once
                for key, value in item.items():
                    if key in _DATA_KEYS:
                        data.update(referenced(value))
                    elif key in _BINARY_KEYS:
                        binary.update(referenced(value))
                stack += item.values()
            elif isinstance(item, list):
                stack += item
            elif isinstance(item, str):  # text strings (hex, UTF-16 decoded) and names
                texts.append(str(item))
            elif isinstance(item, bytes):  # a byte string that is not text
                texts += _runs(item)
    for page in reader.pages:  # what the pages draw is their extracted text already
        try:
            resources = page.get("/Resources")
            binary.update(referenced(page.get("/Contents")))
            binary.update(referenced(resources.get_object().get("/XObject") if resources is not None else None))
        except Exception:  # noqa: BLE001 — a damaged page: its drawings are read below instead
            continue
    budget = MAX_BYTES
    for number, stream in streams.items():
        kind = stream.get("/Type")
        if (budget <= 0 or number in binary or kind in _BINARY_TYPES or stream.get("/Subtype") == "/Image"
                or "/N" in stream):  # /N: an ICC colour profile's component count
            continue
        try:
            decoded = stream.get_data()[:budget]
            budget -= len(decoded)
            if number in data or kind in _DATA_TYPES or stream.get("/Subtype") == "/XML":
                texts += _runs(decoded)
            else:  # a drawing: the strings it shows, whatever font draws them
                for operands, _ in ContentStream(stream, reader).operations:
                    pending = list(operands) if isinstance(operands, list) else []
                    while pending:
                        item = pending.pop()
                        if isinstance(item, list):
                            pending += item
                        elif isinstance(item, str):
                            texts.append(str(item))
                        elif isinstance(item, bytes):
                            texts += _runs(item)
        except Exception:  # noqa: BLE001 — a filter pypdf cannot undo: its raw runs were scanned
            continue
    return texts


def _inflated_streams(data: bytes) -> str:
    """Best effort for a PDF pypdf cannot open: the printable runs of its Flate streams, inflated
    up to MAX_BYTES in all (a compression bomb stops there)."""
    texts, budget = [], MAX_BYTES
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        inflated = _inflate(match.group(1), budget)
        texts += _runs(inflated)
        budget -= len(inflated)
        if budget <= 0:
            break
    return "\n".join(texts)
