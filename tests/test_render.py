"""The display throttle: bounded rate, nothing lost before a pause, nothing drawn after close."""
import threading
import time

from inference_magics.notebook.render import Throttle
from tests.conftest import wait_until


def test_a_burst_is_coalesced_and_its_end_still_shown_during_a_pause():
    drawn = []
    state = {"text": ""}
    throttle = Throttle(lambda: drawn.append(state["text"]), interval=0.05)
    for i in range(200):  # a burst much faster than the interval
        state["text"] += f"t{i} "
        throttle.poke()
    assert len(drawn) < 200  # coalesced: the first poke drew, the rest waited
    # then the model pauses: the deferred draw shows everything that arrived, without a new token
    assert wait_until(lambda: drawn and drawn[-1] == state["text"], timeout=2)
    throttle.close()


def test_no_draw_after_close():
    drawn = []
    throttle = Throttle(lambda: drawn.append(1), interval=0.2)
    throttle.poke()
    throttle.poke()  # deferred
    throttle.close()
    count = len(drawn)
    time.sleep(0.3)
    assert len(drawn) == count == 1


def test_draws_are_serialised_between_threads():
    inside = threading.Lock()
    overlaps = []

    def draw():
        if not inside.acquire(blocking=False):
            overlaps.append(1)
            return
        time.sleep(0.001)
        inside.release()

    throttle = Throttle(draw, interval=0.001)
    workers = [threading.Thread(target=lambda: [throttle.poke() for _ in range(200)]) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    throttle.flush()
    assert not overlaps


def test_deferred_draws_of_every_view_run_on_one_thread():
    # in a kernel each new thread that publishes a display opens its own pipe to the iopub thread:
    # deferred draws share one long-lived thread instead of starting a Timer thread each
    drawn_on = []
    throttles = [Throttle(lambda: drawn_on.append(threading.current_thread()), interval=0.02) for _ in range(3)]
    for _ in range(3):
        before = len(drawn_on)
        for throttle in throttles:
            throttle.poke()
            throttle.poke()  # too soon after the last draw: deferred
        assert wait_until(lambda: len(drawn_on) >= before + 3 and not any(t.pending for t in throttles), timeout=5)
    deferred = {t for t in drawn_on if t is not threading.current_thread()}
    assert len(deferred) == 1 and next(iter(deferred)).name == "inference_magics-display"
    for throttle in throttles:
        throttle.close()


def test_a_failing_deferred_draw_does_not_stop_later_ones():
    calls = []

    def draw():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the display went away")

    throttle = Throttle(draw, interval=0.02)
    throttle.poke()
    throttle.poke()  # deferred: this draw fails, on the shared thread
    assert wait_until(lambda: len(calls) == 2, timeout=5)
    time.sleep(0.03)
    throttle.poke()
    throttle.poke()
    assert wait_until(lambda: len(calls) >= 3, timeout=5)  # the thread lives on
    throttle.close()


# --- what the final view shows (issue 14 items that live in rendering) ---------------------------
def _result(**fields):
    from inference_magics.api import Result

    return Result(**{"backend": "anthropic", "model": "claude-haiku-4-5", **fields})


def test_an_interrupted_footer_claims_no_cost():
    from inference_magics.notebook.render import footer

    shown = footer(_result(text="partial", interrupted=True, cost_usd=0.0))
    assert "interrupted" in shown and "$" not in shown and "tokens" not in shown


def test_an_answer_cut_inside_a_code_block_keeps_its_footer_apart():
    from inference_magics.notebook.render import result_bundle
    from tests.hostile import assert_inert

    bundle = result_bundle(_result(text="Here:\n\n```python\nx = 1\n###", interrupted=True, notices=["a notice"]))
    assert_inert(bundle)
    html = bundle["text/html"]
    assert html.index("</pre>") < html.index("claude-haiku-4-5") and html.index("</pre>") < html.index("a notice")
    assert bundle["text/plain"].endswith("— anthropic · claude-haiku-4-5 · interrupted\n⚠ a notice")


def test_a_cut_off_heading_after_an_interrupt_leaves_no_empty_heading():
    from inference_magics.notebook.render import result_bundle

    assert "<h3" not in result_bundle(_result(text="Intro.\n\n###", interrupted=True))["text/html"]


def test_an_experiment_column_names_a_default_model_once():
    from inference_magics.notebook.render import ExperimentView
    from inference_magics.experiments import Run

    assert ExperimentView.title(Run("local", 1, backend="local")) == "local"
    assert ExperimentView.title(Run("local", 2, backend="local", result=_result(model="gemma-3-270m"))) == \
        "gemma-3-270m · local (#2)"
    assert ExperimentView.title(Run("llama3.2", 1, backend="ollama")) == "llama3.2 · ollama"

def test_the_footer_shows_a_model_load_apart_from_the_first_token():
    """Property: a load the backend waited for (the embedded model starting) is its own figure, and
    time to first token does not include it; without a load there is no such figure."""
    from inference_magics.api import Metrics, Result
    from inference_magics.notebook.render import footer

    loaded = footer(Result(backend="local", model="gemma-3-270m", metrics=Metrics(ttft_s=0.31, load_s=2.46)))
    assert "model load 2.5 s · first token 0.31 s" in loaded
    assert "model load" not in footer(Result(backend="local", model="gemma-3-270m", metrics=Metrics(ttft_s=0.31)))


def test_a_progress_line_counts_one_step_in_the_singular():
    from inference_magics.notebook.progress import Progress

    def finished(total, label, unit):  # the line's state, without a display to draw on (no kernel here)
        line = Progress.__new__(Progress)
        line.total, line.label, line.unit, line.done, line._postfix, line._started = total, label, unit, total, {}, 0
        return line

    one, two = finished(1, "summarizing", "chunk"), finished(2, "map", "row")
    assert one._bundle(final=True)["text/plain"].startswith("✓ summarizing: 1/1 chunk in ")
    assert two._bundle(final=True)["text/plain"].startswith("✓ map: 2/2 rows in ")
