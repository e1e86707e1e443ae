"""%config InferenceMagics.<name> in an in-process IPython shell: reading shows the value in force
(from whatever source), and a rejected value leaves the old one, with one line saying why."""
import logging

from inference_magics import settings


def config(shell, line):
    return shell.run_line_magic("config", line)


def test_config_shows_the_value_in_force_from_every_source(shell, monkeypatch, tmp_path):
    assert config(shell, "InferenceMagics.ollama_timeout") == 30000  # the default, not None
    (tmp_path / ".env").write_text("OLLAMA_CODE_MODEL=from-dotenv\n")
    assert config(shell, "InferenceMagics.ollama_code_model") == "from-dotenv"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:5555")
    assert config(shell, "InferenceMagics.ollama_base_url") == "http://127.0.0.1:5555"  # parsed, as used
    config(shell, "InferenceMagics.ollama_code_model = 'mistral:7b'")
    assert config(shell, "InferenceMagics.ollama_code_model") == "mistral:7b"
    assert settings.load().ollama_code_model == "mistral:7b"
    config(shell, "InferenceMagics.ollama_code_model = None")  # drops the override: the .env decides again
    assert config(shell, "InferenceMagics.ollama_code_model") == "from-dotenv"


def test_a_rejected_value_leaves_the_old_one_with_one_line(shell, caplog):
    config(shell, "InferenceMagics.default_backend = 'anthropic'")
    with caplog.at_level(logging.ERROR):
        config(shell, "InferenceMagics.default_backend = 'cloud'")
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "InferenceMagics.default_backend='cloud' is not valid — use one of" in caplog.records[0].getMessage()
    assert config(shell, "InferenceMagics.default_backend") == "anthropic"
    assert settings.load().default_backend == "anthropic"


def test_the_config_help_lists_every_setting_with_its_current_value(shell, capsys, monkeypatch):
    monkeypatch.setenv("INFERENCE_LOCAL_PARALLEL", "2")
    config(shell, "InferenceMagics")
    shown = capsys.readouterr().out
    block = shown.split("InferenceMagics.local_parallel=")[1].split("InferenceMagics.")[0]
    assert "INFERENCE_LOCAL_PARALLEL" in block and block.rstrip().endswith("Current: 2")
    assert "api_key" not in shown


def test_env_example_documents_every_setting_with_its_default():
    """The docs follow the one table: each row's variable is in .env.example with its default,
    and each %config name is given there in brackets."""
    import re
    from pathlib import Path

    from inference_magics.notebook.config import CONFIGURABLE

    text = (Path(__file__).parents[1] / ".env.example").read_text()
    for var in settings.VARS:
        line = re.search(rf"^#? ?{var.env[0]}=([^\s;]*)$", text, re.M)
        assert line, f"{var.env[0]} is not in .env.example"
        shown = line.group(1)
        assert (var.parse(var.env[0], shown) if shown else None) == var.default, var.env[0]
    assert not [name for name in CONFIGURABLE if not re.search(rf"[\[ ]{name}[\],]", text)]


def test_a_misspelt_name_is_one_line_not_a_python_warning(shell, capfd, recwarn):
    config(shell, "InferenceMagics.ollama_timout = 5000")
    config(shell, "InferenceMagics.anthropic_api_key = 'sk-ant-x'")
    err = capfd.readouterr().err
    assert err.splitlines() == [
        "InferenceMagics has no setting 'ollama_timout' — did you mean ollama_timeout?",
        "InferenceMagics has no setting 'anthropic_api_key' — keys belong in the environment or .env, never in a "
        "notebook's history"]
    assert not [w for w in recwarn if "not recognized" in str(w.message)]
    assert settings.load().ollama_timeout == 30000


def test_a_refused_value_met_at_load_is_one_line_and_the_magics_still_load(capfd):
    """A value from ipython_config.py, or a %config run before %load_ext, is checked when the magics
    are created: a refused one made %load_ext fail with no magic registered."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        config(shell, "InferenceMagics.ollama_timeout = -1")
        config(shell, "InferenceMagics.ollama_code_model = 'mistral:7b'")
        shell.run_line_magic("load_ext", "inference_magics")
        assert "infer" in shell.magics_manager.magics["cell"]
        assert capfd.readouterr().err.splitlines() == [
            "InferenceMagics.ollama_timeout='-1' is not valid — use a positive whole number (milliseconds or a "
            "count). Ignored: OLLAMA_TIMEOUT or its default is in force."]
        assert settings.load().ollama_timeout == 30000 and settings.load().ollama_code_model == "mistral:7b"
    finally:
        InteractiveShell.clear_instance()
