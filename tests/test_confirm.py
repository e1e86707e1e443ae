"""Asking before spending from a notebook front end, in a real kernel over the Jupyter wire: the
request JupyterLab sends (allow_stdin, the cell's id in its metadata) gets an input() question on
the stdin channel — not a button the running cell could never hear (see confirm.py) — and the
answer decides. Declined sends nothing; accepted runs the map."""
from tests.kernel_harness import Execution

CELL = "%%infer --map reviews claude-haiku-4.5 --max-tokens 100\nClassify: {row}"


def answer_from_a_notebook(kernel, code: str, answer: str) -> tuple[str, Execution]:
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": True,
               "stop_on_error": True}
    msg = kernel.client.session.msg("execute_request", content, metadata={"cellId": "cell-1"})
    kernel.client.shell_channel.send(msg)
    request = kernel.client.get_stdin_msg(timeout=60)
    assert request["msg_type"] == "input_request"
    kernel.client.input(answer)
    return request["content"]["prompt"], kernel.collect(Execution(msg["header"]["msg_id"]))


def test_a_notebook_is_asked_through_stdin_and_the_answer_decides(kernel, peers_reset):
    _, claude = peers_reset
    kernel.run("%env INFERENCE_CONFIRM_USD=0.0001\nreviews = ['good film', 'bad film', 'fine film']")
    try:
        question, skipped = answer_from_a_notebook(kernel, CELL, "no")
        assert question.endswith("Start it? [y/N] ") and "above INFERENCE_CONFIRM_USD" in question
        assert skipped.reply["status"] == "error" and "not started: declined" in skipped.stderr
        assert not claude.requests_to("/v1/messages")
        _, ran = answer_from_a_notebook(kernel, CELL, "yes")
        assert ran.reply["status"] == "ok" and len(claude.requests_to("/v1/messages")) == 3
    finally:
        kernel.run("%env INFERENCE_CONFIRM_USD=1.00")
