"""Settings: environment > $PAI_DIR/.env > ./.env, %config overrides on top, one-line errors."""
import pytest

from inference_magics import settings
from inference_magics.errors import ConfigError


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    for var in settings.VARS:
        for name in var.env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PAI_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings.clear_overrides()
    yield
    settings.clear_overrides()


def test_defaults_are_the_documented_ones():
    s = settings.load()
    assert s.default_backend == "ollama" and s.enable_routing is True
    assert s.ollama_base_url == "http://localhost:11434" and s.ollama_timeout == 30000
    assert (s.ollama_default_model, s.ollama_chat_model) == ("llama3.2:latest", "llama3.2:3b")
    assert (s.ollama_code_model, s.ollama_embed_model) == ("qwen2.5-coder:7b", "nomic-embed-text:latest")
    assert s.anthropic_api_key is None and s.anthropic_default_model == "sonnet"
    assert s.anthropic_timeout == 60000 and s.anthropic_base_url is None


def test_environment_beats_pai_dir_beats_local_dotenv(monkeypatch, tmp_path):
    pai = tmp_path / "pai"
    pai.mkdir()
    (pai / ".env").write_text("OLLAMA_DEFAULT_MODEL=from-pai\nOLLAMA_CODE_MODEL=code-from-pai\n")
    (tmp_path / ".env").write_text("OLLAMA_DEFAULT_MODEL=from-local\nOLLAMA_CODE_MODEL=code-from-local\n"
                                   "OLLAMA_CHAT_MODEL=chat-from-local\n")
    monkeypatch.setenv("PAI_DIR", str(pai))
    monkeypatch.setenv("OLLAMA_DEFAULT_MODEL", "from-env")
    s = settings.load()
    assert s.ollama_default_model == "from-env"
    assert s.ollama_code_model == "code-from-pai"
    assert s.ollama_chat_model == "chat-from-local"


def test_config_override_beats_everything(monkeypatch):
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "ollama")
    settings.set_override("default_backend", "anthropic")
    assert settings.load().default_backend == "anthropic"
    settings.set_override("default_backend", None)
    assert settings.load().default_backend == "ollama"


def test_aliases(monkeypatch):
    monkeypatch.setenv("OLLAMA_ENABLE_ROUTING", "false")
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:5555")
    s = settings.load()
    assert s.enable_routing is False
    assert s.ollama_base_url == "http://127.0.0.1:5555"
    monkeypatch.setenv("INFERENCE_ENABLE_ROUTING", "true")  # the new name wins over the old one
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434")
    s = settings.load()
    assert s.enable_routing is True and s.ollama_base_url == "http://gpu-box:11434"


@pytest.mark.parametrize("raw, url", [
    ("http://localhost:11434/", "http://localhost:11434"),
    ("localhost", "http://localhost:11434"),
    ("example.com:8000", "http://example.com:8000"),
    (":56789", "http://127.0.0.1:56789"),
    ("https://ollama.example.com", "https://ollama.example.com:443"),
    ("http://[::1]:11434", "http://[::1]:11434"),
    ("http://host:11434/proxy/path", "http://host:11434/proxy/path"),
    ("http://my_gpu-box.lan:11434", "http://my_gpu-box.lan:11434"),
    ("http://bücher.example:11434", "http://bücher.example:11434"),  # an IDN host: httpx spells it
])
def test_ollama_url_forms(monkeypatch, raw, url):
    monkeypatch.setenv("OLLAMA_BASE_URL", raw)
    assert settings.load().ollama_base_url == url


@pytest.mark.parametrize("var, raw, text", [
    ("INFERENCE_DEFAULT_BACKEND", "foo", "INFERENCE_DEFAULT_BACKEND='foo' is not valid — use one of: ollama, anthropic"),
    ("OLLAMA_TIMEOUT", "abc", "OLLAMA_TIMEOUT='abc' is not valid — use a positive whole number"),
    ("OLLAMA_TIMEOUT", "-5", "OLLAMA_TIMEOUT='-5' is not valid"),
    ("INFERENCE_ENABLE_ROUTING", "maybe", "use true or false"),
    ("OLLAMA_BASE_URL", "http://localhost:99999", "bad port '99999'"),
    ("OLLAMA_BASE_URL", "localhost:abc", "bad port 'abc'"),
    ("OLLAMA_BASE_URL", "ftp://host", "is not a usable URL"),
    ("OLLAMA_BASE_URL", "http//localhost:11434", "write the scheme as http://"),
    ("OLLAMA_DEFAULT_MODEL", "   ", "OLLAMA_DEFAULT_MODEL is empty"),
    ("ANTHROPIC_MAX_RETRIES", "-1", "ANTHROPIC_MAX_RETRIES='-1' is not valid"),
    # a timeout too long for the socket layer failed later as "not Ollama's protocol (OverflowError)"
    ("OLLAMA_TIMEOUT", "99999999999999999999", "OLLAMA_TIMEOUT='99999999999999999999' is too long"),
    ("ANTHROPIC_TIMEOUT", "99999999999999999999", "ANTHROPIC_TIMEOUT='99999999999999999999' is too long"),
    ("OPENAI_TIMEOUT", "99999999999999999999", "OPENAI_TIMEOUT='99999999999999999999' is too long"),
    # an endpoint without a scheme failed later as "cannot reach the Anthropic API — check the network"
    ("ANTHROPIC_BASE_URL", "localhost:8080", "ANTHROPIC_BASE_URL='localhost:8080' is not a usable URL"),
    ("ANTHROPIC_BASE_URL", "ftp://proxy", "use a full http:// or https:// URL"),
    # a word meaning "off" that is not one of ours became a history file of that name next to the notebook
    ("INFERENCE_HISTORY", "none", "INFERENCE_HISTORY='none' is not valid — use on, off, or the path"),
    ("INFERENCE_HISTORY", "disabled", "INFERENCE_HISTORY='disabled' is not valid"),
    # a host no server can have (a pasted colour code, an emoji, a stray bracket) was a 14–25 entry
    # ValueError / InvalidURL traceback from the HTTP client at the first request
    ("OLLAMA_BASE_URL", "\x1b[31mlocalhost", "has a host name no server can have"),
    ("OLLAMA_HOST", "[]", "OLLAMA_HOST='[]' has a host name no server can have ('[]')"),
    ("OLLAMA_BASE_URL", "http://\U0001F642:11434", "has a host name no server can have"),
    ("OPENAI_BASE_URL", "http://\U0001F642/v1", "OPENAI_BASE_URL='http://\U0001F642/v1' has a host name"),
    ("ANTHROPIC_BASE_URL", "https://[]", "has a host name no server can have"),
])
def test_bad_values_name_the_variable_and_what_it_accepts(monkeypatch, var, raw, text):
    monkeypatch.setenv(var, raw)
    with pytest.raises(ConfigError) as err:
        settings.load()
    assert text in err.value.message and "\n" not in err.value.message


def test_bad_value_in_a_dotenv_file_is_named_too(tmp_path):
    (tmp_path / ".env").write_text("OLLAMA_TIMEOUT=soon\n")
    with pytest.raises(ConfigError, match="OLLAMA_TIMEOUT='soon'"):
        settings.load()


def test_bad_config_override_is_refused():
    with pytest.raises(ConfigError, match="InferenceMagics.default_backend='cloud'"):
        settings.set_override("default_backend", "cloud")
    assert settings.load().default_backend == "ollama"


def test_api_key_never_shows(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-sentinel-0123456789abcdef")
    s = settings.load()
    assert s.anthropic_api_key.get() == "sk-ant-sentinel-0123456789abcdef"
    for text in (repr(s), str(s), f"{s}", repr(s.anthropic_api_key), str(s.anthropic_api_key)):
        assert "sentinel" not in text


def test_a_malformed_dotenv_line_is_named_with_file_and_line(tmp_path):
    (tmp_path / ".env").write_text("OLLAMA_DEFAULT_MODEL=mistral:7b\nthis line is junk\n")
    with pytest.raises(ConfigError, match=r"\.env line 2 is not KEY=VALUE \('this line is junk'\)"):
        settings.load()


def test_dotenv_quotes_comments_and_export_work(tmp_path):
    (tmp_path / ".env").write_text('# a comment\nexport OLLAMA_DEFAULT_MODEL="mistral:7b"\n\nOLLAMA_TIMEOUT=5000 # ms\n')
    s = settings.load()
    assert s.ollama_default_model == "mistral:7b" and s.ollama_timeout == 5000


def test_every_setting_but_the_keys_is_a_config_trait():
    from inference_magics.notebook.config import CONFIGURABLE
    from inference_magics.notebook.magics import InferenceMagics

    traits = set(InferenceMagics.class_trait_names(config=True))
    assert set(CONFIGURABLE) <= traits and "privacy" in traits
    assert not {"anthropic_api_key", "openai_api_key"} & traits


def test_credentials_in_a_bad_url_are_not_echoed(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:hunter2pass@api.example.com:99999/v1?key=abc")
    with pytest.raises(ConfigError) as err:
        settings.load()
    assert "hunter2pass" not in err.value.message and "key=abc" not in err.value.message


@pytest.mark.parametrize("raw", ["on", "OFF", "false", "./history.sqlite3", "~/notes/h.db", "/tmp/x/history"])
def test_history_takes_a_switch_or_a_path(monkeypatch, raw):
    monkeypatch.setenv("INFERENCE_HISTORY", raw)
    assert settings.load().history == raw


def test_an_anthropic_gateway_url_is_kept(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://gateway.example.com/anthropic/")
    assert settings.load().anthropic_base_url == "https://gateway.example.com/anthropic"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "")
    assert settings.load().anthropic_base_url is None


# the embedded server's limits (llama.cpp's): past them llama-server exited with a line naming no setting
# ("n_seq_max must be <= 256", "to show complete usage, run with -h", "what(): std::bad_alloc")
@pytest.mark.parametrize("env, text", [
    ({"INFERENCE_LOCAL_PARALLEL": "1000"}, "INFERENCE_LOCAL_PARALLEL='1000' is more slots than llama-server has "
                                           "— use 1 to 256."),
    ({"INFERENCE_LOCAL_CTX_SIZE": "99999999999"}, "INFERENCE_LOCAL_CTX_SIZE='99999999999' is more than llama-server "
                                                  "accepts — use 1 to 2147483647 tokens"),
    ({"INFERENCE_LOCAL_CTX_SIZE": "1000000000"},  # × the 4 default slots: past the 32-bit --ctx-size
     "INFERENCE_LOCAL_CTX_SIZE × INFERENCE_LOCAL_PARALLEL = 1000000000 × 4 = 4000000000 tokens"),
    ({"INFERENCE_LOCAL_CTX_SIZE": "131072", "INFERENCE_LOCAL_PARALLEL": "32768"}, "use 1 to 256"),
    ({"INFERENCE_LOCAL_CTX_SIZE": "16777216", "INFERENCE_LOCAL_PARALLEL": "256"},
     "keep the product within 1 to 2147483647"),
    ({"INFERENCE_LOCAL_THREADS": "100000"}, "INFERENCE_LOCAL_THREADS='100000' is far more threads than this "
                                            "machine's"),
])
def test_extreme_local_server_settings_are_one_line_naming_the_variable_and_the_range(monkeypatch, env, text):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        settings.load()
    assert text in err.value.message and "\n" not in err.value.message


def test_local_server_settings_at_their_limits_are_accepted(monkeypatch):
    import os

    monkeypatch.setenv("INFERENCE_LOCAL_PARALLEL", "256")
    monkeypatch.setenv("INFERENCE_LOCAL_CTX_SIZE", str(2**31 // 256 - 1))
    monkeypatch.setenv("INFERENCE_LOCAL_THREADS", str(min(512, 4 * os.cpu_count())))
    s = settings.load()
    assert (s.local_parallel, s.local_threads) == (256, min(512, 4 * os.cpu_count()))
    monkeypatch.setenv("INFERENCE_LOCAL_THREADS", str(min(512, 4 * os.cpu_count()) + 1))
    with pytest.raises(ConfigError, match=rf"use 1 to {min(512, 4 * os.cpu_count())}, or leave it unset"):
        settings.load()
    with pytest.raises(ConfigError, match="InferenceMagics.local_parallel='257' is more slots"):  # %config too
        settings.set_override("local_parallel", 257)
