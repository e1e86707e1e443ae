"""What %%experiment shows after its columns (issue 14 item 6): model load reported apart from the
first token (Ollama's load_duration, the embedded server's own load), a table with headers people
read over a DataFrame with stable machine names, and a chart whose legend never covers a bar.

Against the Ollama peer with a configured model load (`load_delay`: a model's first generation
since the peer started loads it, and load_duration says so), in a real kernel; against the real
embedded model; the chart's geometry from matplotlib itself."""
from __future__ import annotations

import pytest

from inference_magics import experiments
from inference_magics.notebook import experiment_output
from tests.conftest import needs_local

LOAD_DELAY = 2.0  # seconds the peer spends loading a cold model


def _rows(*specs):
    return [dict(model=model, sample=1, backend="ollama", load_s=load, ttft_s=first, total_s=total,
                 tokens_per_s=speed, output_tokens=40, cost_usd=None, cached=False, error=None, text="t")
            for model, load, first, total, speed in specs]


@pytest.mark.parametrize("rows", [
    _rows(("llama3.2", 2.3, 0.61, 9.4, 22.0), ("qwen2.5-coder:7b", None, 0.58, 8.1, 14.2),
          ("claude-haiku-4.5", None, 0.5, 3.2, 80.1)),
    _rows(("a", None, 0.1, 0.2, 500.0)),                                   # one run, no load
    _rows(*[(f"model-{i}", 1.0 if i % 2 else None, 0.3, 1.0 + i, 10.0 * (i + 1)) for i in range(8)]),
], ids=["three-models", "one-run", "eight-runs"])
def test_the_legend_and_the_value_labels_never_cover_a_bar(rows):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = experiment_output.figure(rows)
    canvas = FigureCanvasAgg(drawn)
    canvas.draw()  # lays the figure out (constrained layout) as savefig would
    renderer = canvas.get_renderer()
    bars = [patch.get_window_extent(renderer) for axis in drawn.axes for patch in axis.patches
            if patch.get_width() > 0]
    [legend] = drawn.legends
    assert bars and legend.get_window_extent(renderer).height > 0
    labels = [text.get_window_extent(renderer) for axis in drawn.axes for text in axis.texts]
    assert len(labels) == 2 * len(rows)  # each run's time and its speed are written at its bars
    for box in [legend.get_window_extent(renderer)] + labels:
        covered = [bar for bar in bars if box.overlaps(bar) and box.x0 < bar.x1 - 1 and bar.x0 < box.x1 - 1]
        assert not covered, f"{box} covers a bar"
    handles = [text.get_text() for text in legend.get_texts()]
    assert handles == (["model load"] if any(r["load_s"] for r in rows) else []) + ["to first token", "generating"]


def test_the_chart_is_transparent_with_text_that_reads_on_light_and_dark():
    import io

    from PIL import Image

    png = experiment_output.chart(_rows(("llama3.2", 2.3, 0.61, 9.4, 22.0)))
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    assert image.getpixel((0, 0))[3] == 0  # no white card in the dark theme

    def luminance(hex_colour):
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    text = luminance(experiment_output.TEXT)
    on_light = (luminance("#ffffff") + 0.05) / (text + 0.05)
    on_dark = (text + 0.05) / (luminance("#111111") + 0.05)  # JupyterLab Dark's --jp-layout-color0
    assert on_light >= 4.5 and on_dark >= 4.0, (on_light, on_dark)


def test_a_model_name_from_the_server_is_drawn_as_text():
    """The server names the model that answered: untrusted. `$` must not start matplotlib
    mathematics (a malformed formula would fail the chart), and a long name is cut."""
    names = ["$\\frac{$ broken", "a\\b $x$ c", "[x](javascript:alert(1)) <img src=x onerror=alert(1)>", "x" * 80]
    rows = _rows(*[("asked", None, 0.1, 1.0, 5.0)] * len(names))
    for row, name in zip(rows, names):
        row["resolved_model"] = name
    assert experiment_output.chart(rows).startswith(b"\x89PNG")
    labels = [t.get_text() for t in experiment_output.figure(rows).axes[0].get_yticklabels()]
    assert labels[:2] == ["\\$\\frac{\\$ broken", "a\\b \\$x\\$ c"] and len(labels[3]) == 40
    assert [line.split("  ")[0] for line in experiment_output.table(rows, 1.0)["text/plain"].splitlines()[2:4]] == \
        names[:2]  # the table shows the name as it is (escaped as HTML by tables.bundle)


def test_the_table_says_load_apart_under_human_headers_and_cached_timings_are_not_shown():
    rows = _rows(("llama3.2", 2.31, 0.61, 9.4, 22.0), ("qwen2.5-coder:7b", None, 0.58, 8.1, 14.2))
    shown = experiment_output.table(rows, 9.5)
    header, first, second = shown["text/plain"].splitlines()[1:]
    assert header.split("  ")[0] == "Model" and "First token (s)" in header and "Load (s)" in header
    assert "ttft_s" not in shown["text/html"] and "Sample" not in header and "Error" not in header
    assert first.split()[2:5] == ["2.31", "0.61", "9.40"] and second.split()[2:5] == ["—", "0.58", "8.10"]
    assert "first token and tokens/s exclude the model load" in shown["text/plain"]
    cached = _rows(("llama3.2", None, 0.0001, 0.0002, None))
    cached[0]["cached"] = True
    assert experiment_output.table(cached, 0.1)["text/plain"].splitlines()[2].split()[2:5] == ["—", "cached", "—"]
    assert "cached answers took no model time" in experiment_output.table(cached, 0.1)["text/plain"]
    assert experiment_output.chart(cached) is None  # a cached answer has no model time to draw


def test_ollama_load_duration_is_reported_apart_and_not_in_the_first_token(kernel, peers_reset):
    """The peer loads each model on its first generation (LOAD_DELAY s, in load_duration); a rerun
    finds them loaded. The same number of requests either way: no warm-up request is sent."""
    ollama, _ = peers_reset
    ollama.set(load_delay=LOAD_DELAY, tokens=6)
    cell = "%%experiment --models llama3.2,qwen2.5-coder:7b --out runs\nExplain recursion."
    cold = kernel.run(cell)
    assert cold.reply["status"] == "ok", cold.errors
    check = ("print([(r.load_s is not None and r.load_s >= {d}, r.ttft_s < r.load_s / 2, "
             "r.ttft_s + r.load_s <= r.total_s) for r in runs.itertuples()])").format(d=LOAD_DELAY)
    assert kernel.run(check).stdout.strip() == "[(True, True, True), (True, True, True)]"
    warm = kernel.run(cell)
    assert kernel.run("print(runs.load_s.isna().all(), list(runs.columns[:6]))").stdout.strip() == \
        "True ['model', 'sample', 'backend', 'resolved_model', 'load_s', 'ttft_s']"
    assert len([r for r in ollama.requests if r.path == "/api/chat"]) == 4  # two models, twice
    for run, load in ((cold, True), (warm, False)):
        [table] = [m["content"]["data"] for m in run.of_type("display_data")
                   if "First token (s)" in m["content"]["data"].get("text/html", "")]
        lines = table["text/plain"].splitlines()
        assert lines[1].split()[:5] == ["Model", "Backend", "Load", "(s)", "First"]
        loads = [line.split()[2] for line in lines[2:]]
        assert all(float(x) >= LOAD_DELAY for x in loads) if load else loads == ["—", "—"]
        assert any("image/png" in m["content"]["data"] for m in run.of_type("display_data"))
    # the %%infer footer of a cold model says its load too (the same ModelLoad event)
    ollama.reset()
    ollama.set(load_delay=LOAD_DELAY)
    answer = kernel.run("%%infer llama3.2\nhi")
    assert f"model load {LOAD_DELAY:.1f} s" in answer.final_text


@needs_local
def test_the_embedded_models_start_is_its_load_and_a_rerun_has_none(local_model):
    """The real llama-server with the packaged model: the first run waits for it to start (the
    server's own measure of its load), the second finds it running."""
    first = experiments.experiment("Name a colour.", ["local"], max_tokens=4)
    second = experiments.experiment("Name a fruit.", ["local"], max_tokens=4)
    [cold], [warm] = first.rows(), second.rows()
    assert cold["error"] is None and warm["error"] is None, (cold["error"], warm["error"])
    assert cold["load_s"] and cold["load_s"] > 0 and cold["ttft_s"] is not None
    assert cold["ttft_s"] + cold["load_s"] <= cold["total_s"]
    assert warm["load_s"] is None
    assert experiment_output.table(first.rows(), first.wall_s)["text/plain"].splitlines()[2].split()[2] == \
        f"{cold['load_s']:.2f}"
