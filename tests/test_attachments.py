"""Images and PDFs reach each protocol as it expects (issue 16), checked at the peers and, for
the peers' own faithfulness, with the official clients."""
import base64
import io

import anthropic
import matplotlib
import ollama
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import inference_magics as im  # noqa: E402
from inference_magics import attachments  # noqa: E402
from inference_magics.code_blocks import extract_code  # noqa: E402
from inference_magics.errors import ConfigError  # noqa: E402
from tests.peers.ollama_peer import DEFAULT_MODELS, model_entry  # noqa: E402

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
VISION = model_entry("gemma3:4b", family="gemma3", parameter_size="4.3B", vision=True)


@pytest.fixture
def figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2])
    ax.set_title("sales")
    yield fig
    plt.close(fig)


def posts(peer, path):
    return [r.body for r in peer.requests if r.path == path]


# ---------------------------------------------------------------- what an attachment is

def test_figure_bytes_path_and_pil_become_attachments(tmp_path, figure):
    png = attachments.figure_png(figure)
    assert png.startswith(b"\x89PNG") and attachments.load(figure).data == png
    (tmp_path / "chart.png").write_bytes(png)
    from_path = attachments.load(str(tmp_path / "chart.png"))
    assert (from_path.mime, from_path.name, from_path.data) == ("image/png", "chart.png", png)
    assert attachments.load(b"\xff\xd8\xff\xe0rest").mime == "image/jpeg"
    assert attachments.load(PDF).mime == "application/pdf"
    from PIL import Image

    image = attachments.load(Image.new("RGB", (4, 4), "red"))
    assert image.mime == "image/png" and Image.open(io.BytesIO(image.data)).size == (4, 4)


def test_bad_attachments_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        attachments.load(str(tmp_path / "missing.png"))
    with pytest.raises(ConfigError, match="it is a folder"):
        attachments.load(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="not a PNG, JPEG"):
        attachments.load(str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match="cannot attach"):
        attachments.load(3.5)


def test_no_current_figure_is_one_line():
    plt.close("all")
    with pytest.raises(ConfigError, match="no current matplotlib figure"):
        attachments.current_figure()


# ---------------------------------------------------------------- on the wire

def test_claude_gets_a_base64_image_block_equal_to_the_figure_png(claude, figure):
    result = im.infer("What does this chart show?", model="claude-haiku-4-5", images=[figure])
    assert result.text and result.backend == "anthropic"
    last = posts(claude, "/v1/messages")[-1]["messages"][-1]
    image, text = last["content"]
    assert image["type"] == "image" and image["source"]["type"] == "base64"
    assert image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == attachments.figure_png(figure)
    assert text == {"type": "text", "text": "What does this chart show?"}


def test_claude_gets_a_pdf_as_a_document_block(claude, tmp_path):
    (tmp_path / "report.pdf").write_bytes(PDF)
    im.infer("Summarize the report", model="claude-haiku-4-5", images=[str(tmp_path / "report.pdf")])
    block = posts(claude, "/v1/messages")[-1]["messages"][-1]["content"][0]
    assert block == {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                    "data": base64.b64encode(PDF).decode()}}


def test_ollama_gets_images_on_the_message(monkeypatch, ollama_peer, figure):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(models=DEFAULT_MODELS + (VISION,))
    result = im.infer("Describe the chart", model="gemma3:4b", images=[figure])
    assert result.text
    message = posts(ollama_peer, "/api/chat")[-1]["messages"][-1]
    assert message["content"] == "Describe the chart"
    assert [base64.b64decode(i) for i in message["images"]] == [attachments.figure_png(figure)]


def test_openai_compatible_server_gets_an_image_url_data_url(monkeypatch, openai_peer, figure):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    im.infer("Describe the chart", backend="openai", images=[figure])
    content = posts(openai_peer, "/v1/chat/completions")[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "Describe the chart"}
    url = content[1]["image_url"]["url"]
    assert content[1]["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == attachments.figure_png(figure)


def test_the_cache_key_includes_the_image(claude, figure, tmp_path):
    other = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    first = im.infer("What is it?", model="claude-haiku-4-5", images=[figure], cache=True)
    second = im.infer("What is it?", model="claude-haiku-4-5", images=[other], cache=True)
    assert not second.cached and first.request_sha256 != second.request_sha256
    assert im.infer("What is it?", model="claude-haiku-4-5", images=[figure], cache=True).cached


# ---------------------------------------------------------------- a model without vision

def test_a_model_without_vision_names_one_that_has_it(monkeypatch, ollama_peer, figure):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(models=DEFAULT_MODELS + (VISION,))
    with pytest.raises(ConfigError, match=r"llama3.2 \(ollama\) cannot see images — use --model gemma3:4b"):
        im.infer("Describe the chart", model="llama3.2", images=[figure])
    assert not posts(ollama_peer, "/api/chat")


def test_no_vision_model_anywhere_says_what_to_pull(monkeypatch, ollama_peer, figure):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    with pytest.raises(ConfigError, match="cannot see images — pull a vision model on Ollama"):
        im.infer("Describe the chart", model="llama3.2", images=[figure])


def test_a_pdf_to_ollama_is_one_line(monkeypatch, ollama_peer):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    with pytest.raises(ConfigError, match="only Claude reads PDFs"):
        im.infer("Summarize", model="llama3.2", images=[PDF])
    assert not posts(ollama_peer, "/api/chat")


# ---------------------------------------------------------------- privacy: attachments follow the text

def test_hostile_a_private_prompt_with_an_image_never_reaches_the_cloud(peers, figure):
    ollama_peer, claude_peer = peers
    ollama_peer.set(models=DEFAULT_MODELS + (VISION,))
    with pytest.raises(im.PrivacyError, match="stays on this machine"):
        im.infer("Confidential: describe our payroll chart", model="claude-haiku-4-5", images=[figure])
    with pytest.raises(im.PrivacyError):
        im.infer("my password is hunter2-Xy9!, what is in the image?", backend="anthropic", images=[figure])
    # routed automatically it goes to the local vision model, with its image
    routed = im.infer("Confidential: describe our payroll chart", model="gemma3:4b", images=[figure])
    assert routed.backend == "ollama"
    assert not [r for r in claude_peer.requests if r.path == "/v1/messages"]
    assert posts(ollama_peer, "/api/chat")[-1]["messages"][-1]["images"]


def test_hostile_local_only_keeps_an_image_here(peers, monkeypatch, figure):
    _, claude_peer = peers
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    with pytest.raises(im.PrivacyError, match="local-only"):
        im.infer("What does this chart show?", model="claude-haiku-4-5", images=[figure])
    assert not [r for r in claude_peer.requests if r.path == "/v1/messages"]


# ---------------------------------------------------------------- the peers are faithful (official clients)

def test_anthropic_peer_refuses_a_bad_media_type_like_the_api(claude):
    client = anthropic.Anthropic(base_url=claude.url, api_key=claude.api_key, max_retries=0)
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "AAAA"}}
    with pytest.raises(anthropic.BadRequestError, match="media_type"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10,
                               messages=[{"role": "user", "content": [block, {"type": "text", "text": "hi"}]}])
    block["source"].update(media_type="image/png", data="not base64!")
    with pytest.raises(anthropic.BadRequestError, match="not valid base64"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10,
                               messages=[{"role": "user", "content": [block]}])


def test_ollama_peer_takes_images_from_the_official_client(ollama_peer):
    ollama_peer.set(models=DEFAULT_MODELS + (VISION,))
    client = ollama.Client(host=ollama_peer.url)
    reply = client.chat(model="gemma3:4b", messages=[{"role": "user", "content": "what?", "images": [PDF[:8]]}])
    assert reply.message.content
    assert base64.b64decode(posts(ollama_peer, "/api/chat")[-1]["messages"][0]["images"][0]) == PDF[:8]
    assert "vision" in client.show("gemma3:4b").capabilities
    assert "vision" not in client.show("llama3.2").capabilities


# ---------------------------------------------------------------- result.code

@pytest.mark.parametrize("text, code", [
    ("Here:\n\n```python\nx = 1 / 2\nprint(x)\n```\n\nDone.", "x = 1 / 2\nprint(x)"),
    ("```\na = 1\n```\nthen\n```\nb = 2\n```", "a = 1"),
    ("import math\nprint(math.pi)\n", "import math\nprint(math.pi)"),
    ("The capital of France is Paris.", None),
    ("Paris", None),
    ("Cut off:\n```python\ndef f():\n    return 1", "def f():\n    return 1"),
])
def test_code_is_the_first_fenced_block_or_an_all_code_answer(text, code):
    assert extract_code(text) == code
