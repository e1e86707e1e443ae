"""The whole file leaves with the request: text an attachment carries where no page shows it (a PDF's
annotation, form field, bookmark, embedded file or XMP; a PNG's compressed text chunk; a JPEG's
UTF-16 EXIF comment), and files or text documents inside earlier turns (`messages=`), are judged
like the prompt. A secret in any of them never reaches Claude or the proxy in front of it."""
import base64
import io
import zlib

import pytest

import inference_magics as im
from inference_magics.attachments import load, scannable_text
from inference_magics.errors import PrivacyError
from inference_magics.privacy import classify
from tests.test_privacy_paths import SECRET, leaked

HEX_UTF16 = ("<FEFF" + SECRET.encode("utf-16-be").hex().upper() + ">").encode()


def _pdf(catalog: bytes = b"", page: bytes = b"", extra=()) -> bytes:
    """A one-page PDF whose page says only "Quarterly report"; `extra` objects are numbered from 6."""
    content = b"BT /F1 12 Tf 72 720 Td (Quarterly report) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R " + catalog + b" >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> " + page + b" >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", *extra]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def _flate_stream(head: bytes, text: str) -> bytes:
    body = zlib.compress(text.encode())
    return b"<< " + head + b" /Filter /FlateDecode /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"


def _png(**chunk) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if chunk.get("ztxt"):
        info.add_text("Comment", f"token {SECRET}", zip=True)
    if chunk.get("itxt"):
        info.add_itxt("Comment", f"token {SECRET}", zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _jpeg_xp_comment() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x9C9C] = f"token {SECRET}".encode("utf-16-le")  # XPComment, as Windows writes it
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


HIDDEN = {
    "pdf annotation (hex, UTF-16)": lambda: _pdf(page=b"/Annots [6 0 R]", extra=[
        b"<< /Type /Annot /Subtype /FreeText /Rect [72 600 400 650] /DA (/Helv 12 Tf) /Contents " + HEX_UTF16 + b" >>"]),
    "pdf form field value": lambda: _pdf(catalog=b"/AcroForm << /Fields [6 0 R] >>", page=b"/Annots [6 0 R]", extra=[
        b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (token) /Rect [72 600 400 650] /V " + HEX_UTF16 + b" >>"]),
    "pdf embedded file": lambda: _pdf(catalog=b"/Names << /EmbeddedFiles << /Names [(config.env) 6 0 R] >> >>", extra=[
        b"<< /Type /Filespec /F (config.env) /EF << /F 7 0 R >> >>", _flate_stream(b"", f"GITHUB_TOKEN={SECRET}\n")]),
    "pdf bookmark": lambda: _pdf(catalog=b"/Outlines 6 0 R", extra=[
        b"<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 1 >>", b"<< /Title " + HEX_UTF16 + b" /Parent 6 0 R >>"]),
    "pdf XMP metadata": lambda: _pdf(catalog=b"/Metadata 6 0 R", extra=[_flate_stream(
        b"/Type /Metadata /Subtype /XML", f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><d>{SECRET}</d></x:xmpmeta>')]),
    "png zTXt": lambda: _png(ztxt=True),
    "png compressed iTXt": lambda: _png(itxt=True),
    "jpeg EXIF XPComment": _jpeg_xp_comment,
}


@pytest.mark.parametrize("where", list(HIDDEN))
def test_a_secret_hidden_in_an_attachment_never_reaches_claude(proxy, peers, where):
    _, claude = peers
    data = HIDDEN[where]()
    with pytest.raises(PrivacyError, match="refused to send"):
        im.infer("Describe the attached file", model="claude-haiku-4.5", images=[data])
    assert not claude.requests_to("/v1/messages"), f"the file ({where}) was sent to Claude"
    assert not leaked(SECRET, claude, proxy)


def _turn(*blocks) -> list[dict]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "keep these"}]},
            {"role": "assistant", "content": "Kept."}]


EARLIER = {
    "a text document": lambda: _turn({"type": "document", "source": {
        "type": "text", "media_type": "text/plain", "data": f"GITHUB_TOKEN={SECRET}"}}),
    "a base64 PDF": lambda: _turn({"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": base64.b64encode(HIDDEN["pdf bookmark"]()).decode()}}),
    "a base64 image": lambda: _turn({"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": base64.b64encode(_png(ztxt=True)).decode()}}),
}


@pytest.mark.parametrize("what", list(EARLIER))
def test_a_secret_in_an_earlier_turns_file_never_reaches_claude(proxy, peers, what):
    _, claude = peers
    with pytest.raises(PrivacyError, match="refused to send"):
        im.infer("Summarize what I gave you", model="claude-haiku-4.5", messages=EARLIER[what]())
    assert not claude.requests_to("/v1/messages")
    assert not leaked(SECRET, claude, proxy)


def test_an_ollama_turns_images_are_judged_too(proxy, peers):
    from inference_magics import policy

    turns = [{"role": "user", "content": "look", "images": [base64.b64encode(_png(itxt=True)).decode()]},
             {"role": "assistant", "content": "", "tool_calls": [{"name": "save", "arguments": {"token": SECRET}}]}]
    sent = policy.outgoing_text("and now?", None, turns)
    assert sent.count(SECRET) == 2, sent


@pytest.mark.parametrize("fmt", ["pdf", "png"])
def test_a_plain_figure_with_pixels_is_not_judged_private(fmt):
    """Drawing numbers and pixels are not text: a chart (a raster image inside, vector glyphs) stays sendable."""
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure()
    axes = figure.add_subplot()
    axes.imshow(np.random.default_rng(0).random((200, 200, 3)))
    axes.set_title("Quarterly sales")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    text = scannable_text([load(buffer.getvalue())])
    assert "Quarterly sales" in text or fmt == "png"
    assert classify(text) is None
