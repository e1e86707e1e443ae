"""A ./.env in the notebook's folder (it may have come with a cloned repository) cannot change
where a key is sent or weaken privacy: such lines are ignored, with one visible notice naming the
file and the variable. The environment, $PAI_DIR/.env and %config may set them."""
import pytest

import inference_magics as im
from inference_magics import settings
from tests.peers import AnthropicPeer
from tests.peers.recording import RecordingProxy


@pytest.fixture(autouse=True)
def fresh_notices():
    settings._noticed.clear()
    yield
    settings._noticed.clear()


def notices(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("inference_magics: ignored")]


@pytest.mark.parametrize("line, field, kept", [
    ("ANTHROPIC_BASE_URL=http://127.0.0.1:9/steal", "anthropic_base_url", None),
    ("OPENAI_BASE_URL=https://collector.example.com/v1", "openai_base_url", "http://localhost:8080/v1"),
    ("OLLAMA_BASE_URL=http://gpu-box.example.com:11434", "ollama_base_url", "http://localhost:11434"),
    ("OLLAMA_HOST=203.0.113.7", "ollama_base_url", "http://localhost:11434"),
    ("INFERENCE_ENABLE_ROUTING=false", "enable_routing", True),
    ("OLLAMA_ENABLE_ROUTING=off", "enable_routing", True),
    ("INFERENCE_LOCAL_SERVER=./not-llama-server.sh", "local_server", None),  # a program we would run
])
def test_a_folder_dotenv_cannot_redirect_keys_or_weaken_privacy(tmp_path, capsys, monkeypatch, line, field, kept):
    monkeypatch.delenv("INFERENCE_LOCAL_SERVER", raising=False)  # the tests' own "not installed" setting
    (tmp_path / ".env").write_text(line + "\n")
    assert getattr(settings.load(), field) == kept
    name = line.split("=")[0]
    shown = notices(capsys)
    assert len(shown) == 1 and name in shown[0] and str(tmp_path / ".env") in shown[0]
    assert "$PAI_DIR/.env" in shown[0] and f"%config InferenceMagics.{field}" in shown[0]
    settings.load()
    assert not notices(capsys)  # one notice, not one per cell


@pytest.mark.parametrize("line, field, value", [
    ("OLLAMA_BASE_URL=http://127.0.0.1:5555", "ollama_base_url", "http://127.0.0.1:5555"),
    ("OPENAI_BASE_URL=http://localhost:9000/v1", "openai_base_url", "http://localhost:9000/v1"),
    ("INFERENCE_PRIVACY=local-only", "privacy", "local-only"),  # stricter is always allowed
    ("INFERENCE_ENABLE_ROUTING=true", "enable_routing", True),
    ("OLLAMA_DEFAULT_MODEL=mistral:7b", "ollama_default_model", "mistral:7b"),
    ("ANTHROPIC_API_KEY=sk-ant-folder-key-0000000000", "has_anthropic_key", True),
])
def test_what_a_folder_dotenv_may_still_set(tmp_path, capsys, line, field, value):
    (tmp_path / ".env").write_text(line + "\n")
    assert getattr(settings.load(), field) == value
    assert not notices(capsys)


def test_openai_url_on_this_machine_may_not_take_a_key_from_elsewhere(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-own-openai-key-000000")
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=http://127.0.0.1:9999/v1\n")
    assert settings.load().openai_base_url == "http://localhost:8080/v1"
    assert "your OPENAI_API_KEY" in notices(capsys)[0]
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=http://127.0.0.1:9999/v1\nOPENAI_API_KEY=sk-folder-own-0000000\n")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert settings.load().openai_base_url == "http://127.0.0.1:9999/v1"  # the folder's own key, its own server


def test_the_environment_pai_dir_and_config_may_set_them(tmp_path, capsys, monkeypatch):
    pai = tmp_path / "pai"
    pai.mkdir()
    (pai / ".env").write_text("ANTHROPIC_BASE_URL=http://127.0.0.1:7000\nINFERENCE_ENABLE_ROUTING=false\n")
    monkeypatch.setenv("PAI_DIR", str(pai))
    loaded = settings.load()
    assert loaded.anthropic_base_url == "http://127.0.0.1:7000" and loaded.enable_routing is False
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:7001")
    assert settings.load().anthropic_base_url == "http://127.0.0.1:7001"
    settings.set_override("ollama_base_url", "http://gpu-box.example.com:11434")
    assert settings.load().ollama_base_url == "http://gpu-box.example.com:11434"
    monkeypatch.chdir(pai)  # the notebook folder is $PAI_DIR itself: its .env is the user's own
    assert settings.load().anthropic_base_url == "http://127.0.0.1:7001"
    assert not notices(capsys)


def test_a_line_the_environment_overrides_needs_no_notice(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:7002")
    (tmp_path / ".env").write_text("ANTHROPIC_BASE_URL=http://127.0.0.1:9/steal\n")
    assert settings.load().anthropic_base_url == "http://127.0.0.1:7002"
    assert not notices(capsys)


def test_the_key_never_goes_where_a_folder_dotenv_points(tmp_path, capsys, monkeypatch, peers):
    """Nothing else sets ANTHROPIC_BASE_URL, so the file's line would decide: it is ignored and the
    official endpoint is used. A recording proxy (which tunnels nothing) shows where the request
    went, without it leaving this machine."""
    _, claude = peers
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "0")
    with AnthropicPeer() as decoy, RecordingProxy() as proxy:
        for name, value in proxy.environment().items():
            monkeypatch.setenv(name, value)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        (tmp_path / ".env").write_text(f"ANTHROPIC_BASE_URL={decoy.url}\n")
        with pytest.raises(im.InferenceError):
            im.infer("What is the capital of France?", model="claude-haiku-4-5")
        assert not decoy.requests  # the key never went where the folder's file pointed
        assert [r.target for r in proxy.requests] == ["api.anthropic.com:443"]
    shown = notices(capsys)
    assert len(shown) == 1 and "ANTHROPIC_BASE_URL" in shown[0] and "your Anthropic API key" in shown[0]


def test_privacy_routing_stays_on_against_a_folder_dotenv(tmp_path, capsys, peers):
    _, claude = peers
    (tmp_path / ".env").write_text("INFERENCE_ENABLE_ROUTING=false\nINFERENCE_DEFAULT_BACKEND=anthropic\n")
    assert im.infer("This is confidential: our Q3 numbers.").backend == "ollama"
    assert not claude.requests_to("/v1/messages")
    assert "INFERENCE_ENABLE_ROUTING" in notices(capsys)[0]


@pytest.mark.parametrize("line, allowed", [
    ("OTEL_EXPORTER_OTLP_ENDPOINT=https://traces.example.com", False),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://198.51.100.4:4318/v1/traces", False),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true", False),
    ("OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318", True),  # a collector on this machine
])
def test_a_folder_dotenv_cannot_send_traces_or_their_text_elsewhere(tmp_path, capsys, line, allowed):
    """A collector elsewhere with content capture on would receive every prompt that is not private."""
    name, value = line.split("=", 1)
    (tmp_path / ".env").write_text(line + "\n")
    assert settings.outside_values(name) == ({name: value} if allowed else {})
    shown = notices(capsys)
    assert (not shown) if allowed else (len(shown) == 1 and name in shown[0] and "$PAI_DIR/.env" in shown[0])


def test_the_environment_may_still_turn_on_content_capture(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    (tmp_path / ".env").write_text("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true\n")
    assert settings.outside_values("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") == {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert not notices(capsys)
