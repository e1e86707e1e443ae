"""A private prompt never leaves the machine, on every path, under a recording proxy.

Every probe sets every proxy variable to a recording proxy, points Claude at the recording
Anthropic peer, and checks that no byte of SECRET reached either (nor any other recorder)."""
import base64
import zlib

import pytest

import inference_magics as im
from inference_magics.errors import InferenceError, PrivacyError
from tests.peers import OllamaPeer, OpenAIPeer
from tests.peers.recording import RecordingProxy, Redirector

SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"
AWS = "AKIA4Q7ZK2M9XJ3TRW5P"
PRIVATE = f"Why does git reject this token? {SECRET}"
REMOTE_IP = "192.0.2.2"  # this machine's non-loopback address: a stand-in for another host


def _bodies(peer) -> str:
    return " ".join(f"{r.path} {r.body!r} {r.query!r}" for r in peer.requests)


def _proxied(proxy) -> str:
    return " ".join(f"{r.target} {r.body!r}" for r in proxy.requests)


def _b64_needles(secret: str) -> list[str]:
    """The secret, and its base64 in each of the three alignments (a document block carries base64)."""
    raw = secret.encode()
    out = [secret]
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + raw).decode()
        out.append(enc[4 * ((shift + 2) // 3) + 2:-4])
    return out


def leaked(secret: str, *recorders) -> list[str]:
    found = []
    for rec in recorders:
        text = _proxied(rec) if isinstance(rec, RecordingProxy) else _bodies(rec)
        found += [f"{type(rec).__name__}: {n}" for n in _b64_needles(secret) if n and n in text]
    return found


@pytest.fixture(scope="module")
def remote():
    """Ollama and OpenAI-compatible servers reachable at a non-loopback address of this machine."""
    with OllamaPeer(host="0.0.0.0") as ollama, OpenAIPeer(host="0.0.0.0") as openai:
        yield ollama, openai


def _pdf_with_text(text: str, compress: bool) -> bytes:
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    body = zlib.compress(content) if compress else content
    filt = b"/Filter /FlateDecode " if compress else b""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< " + filt + b"/Length " + str(len(body)).encode() + b" >>\nstream\n" + body + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    for i, obj in enumerate(objs, 1):
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    return out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


# --- 1. attachments: a PDF whose text holds a secret, with a harmless prompt, to Claude ----------
def _matplotlib_pdf(text: str) -> bytes:
    """A PDF as a real tool writes it: compressed streams, a TrueType font shown by glyph ids."""
    import io

    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        figure, buffer = Figure(), io.BytesIO()
        figure.text(0.05, 0.5, text)
        figure.savefig(buffer, format="pdf")
    return buffer.getvalue()


@pytest.mark.parametrize("how", ["plain", "compressed, no xref", "matplotlib"])
def test_pdf_with_a_secret_never_reaches_claude(proxy, peers, how):
    _, claude = peers
    text = f"aws key {AWS} and token {SECRET}"
    pdf = _matplotlib_pdf(text) if how == "matplotlib" else _pdf_with_text(text, how != "plain")
    try:
        im.infer("Summarize the attached report", model="claude-haiku-4.5", images=[pdf])
    except PrivacyError:
        pass
    assert not leaked(SECRET, claude, proxy), leaked(SECRET, claude, proxy)
    sent = [r for r in claude.requests if r.path == "/v1/messages"]
    assert not sent, "the PDF was sent to Claude"


# --- 2. fallback: local Ollama down, private prompt, Claude reachable --------------------------
def test_private_prompt_does_not_fall_back_to_claude(proxy, peers, monkeypatch):
    _, claude = peers
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:9")  # refused
    im.backends._instances.clear()
    with pytest.raises(InferenceError):
        im.infer(PRIVATE)
    assert not leaked(SECRET, claude, proxy)
    assert not claude.requests_to("/v1/messages")


# --- 3. tool result with a secret, to Claude ---------------------------------------------------
def test_a_tool_result_with_a_secret_never_reaches_claude(proxy, peers):
    _, claude = peers
    claude.set(tool_calls="auto")

    def read_config(name: str) -> str:
        """Read a config value."""
        return f"token={SECRET}"

    with pytest.raises(PrivacyError):
        im.infer("What does the config say?", model="claude-haiku-4.5", tools=[read_config])
    assert not leaked(SECRET, claude, proxy)


# --- 4. map with one private row in the middle -------------------------------------------------
def test_map_private_middle_row(proxy, peers):
    _, claude = peers
    mapped = im.map("Classify: {row}", ["hello", PRIVATE, "world"], model="claude-haiku-4.5", progress=False)
    assert mapped.rows[1].error and "refused" in mapped.rows[1].error
    assert not leaked(SECRET, claude, proxy)
    assert SECRET not in (mapped.rows[1].error or "")


# --- 5. experiment across a local and a cloud model --------------------------------------------
def test_experiment_local_and_cloud(proxy, peers):
    ollama, claude = peers
    from inference_magics.experiments import experiment

    done = experiment(PRIVATE, ["llama3.2", "claude-haiku-4.5"])
    assert done.runs[1].error and not done.runs[0].error
    assert not leaked(SECRET, claude, proxy)
    assert SECRET in _bodies(ollama)


# --- 6. workflows: review and summarize with a cloud model --------------------------------------
def test_workflows_with_a_cloud_model(proxy, peers):
    _, claude = peers
    from inference_magics import workflows

    for call in (lambda: workflows.review(f"TOKEN = '{SECRET}'\n", model="claude-haiku-4.5"),
                 lambda: workflows.summarize(("Plain text. " * 4000) + PRIVATE, model="claude-haiku-4.5",
                                             progress=False)):
        with pytest.raises(PrivacyError):
            call()
    assert not leaked(SECRET, claude, proxy)


def test_summary_without_a_model_stays_local_even_for_chunks_without_the_secret(proxy, peers, monkeypatch):
    ollama, claude = peers
    from inference_magics import workflows

    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "anthropic")
    text = PRIVATE + "\n\n" + ("Plain text about the architecture and trade-offs. " * 2000)
    workflows.summarize(text, progress=False)
    assert not leaked(SECRET, claude, proxy)
    assert not claude.requests_to("/v1/messages")


# --- 7. embeddings: remote OpenAI-compatible and remote Ollama, Ollama cloud model ---------------
def test_embeddings_to_remote_servers_refuse_a_secret(proxy, peers, remote, monkeypatch):
    r_ollama, r_openai = remote
    r_ollama.reset(), r_openai.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{REMOTE_IP}:{r_openai.port}/v1")
    for kwargs in (dict(backend="openai", model="nomic-embed-text-v1.5"),):
        with pytest.raises(PrivacyError):
            im.embed(["hello", PRIVATE], **kwargs)
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://{REMOTE_IP}:{r_ollama.port}")
    im.backends._instances.clear()
    with pytest.raises(PrivacyError):
        im.embed(["hello", PRIVATE])
    assert not leaked(SECRET, r_ollama, r_openai, proxy)


# --- 8. chat to a remote OpenAI-compatible server / remote Ollama -------------------------------
def test_chat_to_remote_servers_never_carries_the_secret(proxy, peers, remote, monkeypatch):
    r_ollama, r_openai = remote
    r_ollama.reset(), r_openai.reset()
    _, claude = peers
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{REMOTE_IP}:{r_openai.port}/v1")
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://{REMOTE_IP}:{r_ollama.port}")
    im.backends._instances.clear()
    for kwargs in (dict(backend="openai"), dict(backend="ollama"), dict(model="llama3.2"), {}):
        try:
            im.infer(PRIVATE, **kwargs)
        except InferenceError:
            pass
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "openai")
    try:
        im.infer(PRIVATE)
    except InferenceError:
        pass
    assert not leaked(SECRET, r_ollama, r_openai, claude, proxy)


# --- 9. a redirecting "local" Ollama pointing at the cloud --------------------------------------
def test_redirect_to_the_cloud(proxy, peers, monkeypatch):
    _, claude = peers
    with Redirector(claude.url, status=307) as redirect:
        monkeypatch.setenv("OLLAMA_BASE_URL", redirect.url)
        im.backends._instances.clear()
        with pytest.raises(InferenceError):
            im.infer(PRIVATE)
        with pytest.raises(InferenceError):
            im.embed([PRIVATE])
    assert not leaked(SECRET, claude, proxy)
    assert not claude.requests


# --- 10. chat widget: a secret turn, then switch to Claude ----------------------------------------
def test_chat_widget_secret_then_claude(proxy, peers):
    ollama, claude = peers
    from inference_magics.notebook.widget import ChatWidget

    chat = ChatWidget()
    chat._start_answer(PRIVATE)
    chat._worker.join(10)
    assert SECRET in _bodies(ollama)  # the first turn was answered locally
    chat._choose("claude-haiku-4.5", None)
    chat._start_answer("and now summarize what I said")
    chat._worker.join(10)
    assert not leaked(SECRET, claude, proxy)
    assert not claude.requests_to("/v1/messages")
    assert any("refused" in t.text for t in chat.conversation.turns)


# --- 11. message batches with one private row -------------------------------------------------
def test_message_batch_private_row(proxy, peers):
    _, claude = peers
    from inference_magics import message_batches

    job = message_batches.submit("Classify: {row}", ["hello", PRIVATE], model="claude-haiku-4.5")
    assert "1" in job["refused"]
    assert not leaked(SECRET, claude, proxy)


# --- 12. at rest: history, response cache, embeddings cache hold no secret -----------------------
def test_at_rest_nothing_in_clear(proxy, peers, monkeypatch, tmp_path):
    ollama, _ = peers
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INFERENCE_HISTORY", str(tmp_path / "hist.db"))
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    monkeypatch.setenv("INFERENCE_CACHE_FILE", str(tmp_path / "responses.db"))
    ollama.set(text=f"your token {SECRET} is fine")  # the model echoes it
    im.infer(PRIVATE, system=f"sys {SECRET}")
    im.embed([PRIVATE])
    from inference_magics import write_behind

    write_behind.flush()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"hist.db", "responses.db"} <= {p.name for p in files}, files
    hits = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not hits, hits


# --- 13. notebook context: {var} values are shortened BEFORE the policy sees them ----------------
@pytest.fixture
def shell(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "inference_magics")
    yield ip


def _run(ip, cell):
    result = ip.run_cell(cell)
    return result


@pytest.mark.parametrize("value", ["df", "log"])
def test_a_shortened_variable_never_sends_part_of_a_secret(proxy, peers, shell, value):
    _, claude = peers
    import pandas as pd

    shell.user_ns["df"] = pd.DataFrame({"service": ["github", "ci"], "credential": ["github " + SECRET, "none"]})
    shell.user_ns["log"] = "x" * (8000 - 30) + " " + SECRET + " more log"
    _run(shell, f"%%infer --model claude-haiku-4.5\nWhat do you see in {{{value}}}?")
    got = _bodies(claude) + _proxied(proxy)
    assert SECRET[:24] not in got, f"{SECRET[:24]}... reached Claude / the proxy"


# --- 14. tool results are cut BEFORE the guard sees them -----------------------------------------
@pytest.mark.parametrize("how", ["returns", "raises"])
def test_a_cut_tool_result_never_sends_part_of_a_secret(proxy, peers, how):
    _, claude = peers
    from inference_magics.tools import MAX_RESULT_CHARS

    claude.set(tool_calls="auto")
    pad = MAX_RESULT_CHARS if how == "returns" else 500  # str(exc)[:500]

    def read_log(name: str) -> str:
        """Read a log."""
        text = "x" * (pad - 30) + " " + SECRET + " end"
        if how == "raises":
            raise RuntimeError(text)
        return text

    try:
        im.infer("What does the log say?", model="claude-haiku-4.5", tools=[read_log])
    except InferenceError:
        pass
    got = _bodies(claude) + _proxied(proxy)
    assert SECRET[:24] not in got, f"{SECRET[:24]}... reached Claude / the proxy"


# --- 15. --fix: the failing cell's source is cut BEFORE the policy sees it -----------------------
def test_fix_with_a_long_cell_never_sends_part_of_a_secret(proxy, peers, shell):
    _, claude = peers
    from inference_magics.last_error import MAX_SOURCE_CHARS

    pad = "# " + "x" * (MAX_SOURCE_CHARS - 30 - 3) + "\n"
    shell.run_cell(pad + f"token = '{SECRET}'\n1/0\n")
    shell.run_cell("%infer --fix --model claude-haiku-4.5")
    got = _bodies(claude) + _proxied(proxy)
    assert claude.requests_to("/v1/messages"), "nothing was asked: the probe did not run"
    assert SECRET[:20] not in got, f"{SECRET[:20]}... reached Claude / the proxy"
