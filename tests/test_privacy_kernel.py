"""The one policy through the magics, in a real kernel: `--workflow review --file`, `--map` with a
private first row, `%infer_batches` under local-only, and the notice for a folder's .env."""
import pytest

SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"  # a GitHub token shape


@pytest.fixture(autouse=True)
def leave_the_peers_clean(ollama_server, claude_server):
    """The shared peers keep no requests of ours for a later module's kernel to count."""
    yield
    ollama_server.reset()
    claude_server.reset()


def shown(run) -> str:
    return run.stderr + "".join("".join(e["traceback"]) for e in run.errors) + run.everything()


def claude_saw(claude) -> str:
    return " ".join(f"{r.path} {r.body}" for r in claude.requests)


def test_review_of_a_file_with_a_secret_is_refused_for_claude(kernel, peers_reset):
    _, claude = peers_reset
    source = f"TOKEN = {SECRET!r}\nprint(TOKEN)\n"
    assert kernel.run(f"open('deploy.py', 'w').write({source!r})").reply["status"] == "ok"
    run = kernel.run("%infer --workflow review --file deploy.py --model claude-haiku-4.5")
    assert run.reply["status"] == "error", shown(run)
    assert "refused to send this prompt to anthropic" in shown(run) and "Traceback" not in shown(run)
    assert SECRET not in run.everything()
    assert not claude.requests
    local = kernel.run("%infer --workflow review --file deploy.py")  # no model named: it stays local
    assert local.reply["status"] == "ok" and "stays on this machine" in local.final_markdown
    assert "ollama ·" in local.final_markdown and SECRET not in local.final_markdown


def test_map_refuses_a_private_first_row_in_its_row(kernel, peers_reset):
    _, claude = peers_reset
    kernel.run(f"rows = ['my token is {SECRET}', 'the weather today', 'the sea']")
    run = kernel.run("%%infer --map rows --model claude-haiku-4.5\nSummarize: {row}")
    assert run.reply["status"] == "ok", shown(run)
    table = run.displays[-1]["content"]["data"]["text/plain"]
    assert "refused to send this prompt to anthropic" in table and "1 failed" in table
    check = kernel.run("print([(r.backend, bool(r.error)) for r in _map.rows])")
    assert check.stdout.strip() == "[('', True), ('anthropic', False), ('anthropic', False)]"
    assert len([r for r in claude.requests if r.path == "/v1/messages"]) == 2 and SECRET not in claude_saw(claude)


def test_infer_batches_under_local_only_asks_claude_nothing(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(batch_seconds=0.2)
    kernel.run(f"rows = ['my token is {SECRET}', 'the weather today']")
    submitted = kernel.run("%%infer --map rows --batch-api --model claude-haiku-4.5\nSummarize: {row}")
    assert submitted.reply["status"] == "ok" and "1 refused" in submitted.everything()
    claude.reset()
    try:
        kernel.run("%config InferenceMagics.privacy = 'local-only'")
        listed = kernel.run("%infer_batches")
        assert listed.reply["status"] == "ok" and "not polled (INFERENCE_PRIVACY=local-only)" in listed.everything()
        known = kernel.run("from inference_magics import message_batches as batch\nprint(batch.jobs()[0]['id'])").stdout.strip()
        collect = kernel.run(f"%infer_batches {known}")
        assert collect.reply["status"] == "error" and "local-only" in shown(collect)
        again = kernel.run("%%infer --map rows --batch-api --model claude-haiku-4.5\nSummarize: {row}")
        assert "INFERENCE_PRIVACY=local-only: nothing is sent to anthropic" in shown(again)
    finally:
        kernel.run("%config InferenceMagics.privacy = None")
    assert not claude.requests


def test_a_folder_dotenv_that_weakens_privacy_is_ignored_with_a_visible_notice(kernel, peers_reset):
    ollama, claude = peers_reset
    kernel.run("open('.env', 'w').write('INFERENCE_ENABLE_ROUTING=false\\nINFERENCE_DEFAULT_BACKEND=anthropic\\n')")
    try:
        run = kernel.run("%%infer\nThis is confidential: our Q3 numbers.")
        assert run.reply["status"] == "ok"
        assert "inference_magics: ignored INFERENCE_ENABLE_ROUTING from" in run.stderr and ".env" in run.stderr
        assert "private prompt" in run.final_markdown and ollama.requests_to("/api/chat")
        assert not claude.requests_to("/v1/messages")
        quiet = kernel.run("%%infer\nThis is confidential too.")
        assert quiet.reply["status"] == "ok" and "ignored" not in quiet.stderr  # one notice, not one per cell
    finally:
        kernel.run("import os; os.remove('.env')")


@pytest.fixture(scope="module")
def proxied_kernel(ollama_server, claude_server, tmp_path_factory):
    """A kernel started the way a corporate laptop starts one: every proxy variable set, no NO_PROXY."""
    import os

    from tests.conftest import peer_environment
    from tests.kernel_harness import Kernel
    from tests.peers.recording import RecordingProxy

    home = tmp_path_factory.mktemp("proxied")
    with RecordingProxy() as proxy:
        saved = {n: os.environ.pop(n) for n in ("NO_PROXY", "no_proxy") if n in os.environ}
        env = {**peer_environment(ollama_server.url, claude_server), **proxy.environment(),
               "INFERENCE_DATA_DIR": str(home / "data")}
        k = Kernel(env, cwd=str(home))
        k.proxy = proxy
        k.run("%load_ext inference_magics")
        try:
            yield k
        finally:
            k.shutdown()
            os.environ.update(saved)


def test_magics_reach_loopback_ollama_directly_under_a_proxy(proxied_kernel, peers_reset):
    ollama, _ = peers_reset
    proxy = proxied_kernel.proxy
    proxy.reset()
    explain = proxied_kernel.run(f"%%infer --explain\nWhy is this token rejected? {SECRET}")
    assert "stays on this machine" in explain.everything()
    for cell in (f"%%infer\nWhy is this token rejected? {SECRET}", f"%embed Why is this token rejected? {SECRET}",
                 "%models", "%infer_health"):
        run = proxied_kernel.run(cell)
        assert run.reply["status"] == "ok", shown(run)
    assert SECRET in str(ollama.requests_to("/api/chat")[-1].body) and ollama.requests_to("/api/embed")
    assert not [r for r in proxy.requests if str(ollama.port) in r.target], [r.target for r in proxy.requests]
    assert SECRET not in " ".join(f"{r.target} {r.body!r}" for r in proxy.requests)
