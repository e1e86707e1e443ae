"""The IPython layer: magics, the chat widget and how results are drawn in a notebook. The rest
of the package is a plain Python library; this layer is sugar over it."""
from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    from .. import progress as library_progress
    from . import progress
    from .magics import InferenceMagics
    from .magics_data import DataMagics

    ipython.register_magics(InferenceMagics)
    ipython.register_magics(DataMagics)
    library_progress.show_with(progress.in_kernel)
    # by name: the API (and what it imports) stays unloaded until a Result exists
    html = ipython.display_formatter.formatters["text/html"]
    html.for_type_by_name("inference_magics.api", "Result", _result_html)
    _remember_errors(ipython)
    _write_after_cells(ipython)


def unload_ipython_extension(ipython) -> None:
    """`%unload_ext` (and `%reload_ext`): take back what loading added — the magics, the Result
    formatter, the progress display and the hooks — and let a held history write go."""
    from .. import progress as library_progress
    from .. import write_behind
    from .magics import InferenceMagics
    from .magics_data import DataMagics

    manager = ipython.magics_manager
    for magics in (InferenceMagics, DataMagics):
        for kind, names in magics.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(magics.__name__, None)
    ipython.display_formatter.formatters["text/html"].pop("inference_magics.api.Result", None)
    library_progress.show_with(None)
    hooks = [("pre_run_cell", write_behind.hold), ("post_run_cell", write_behind.release),
             ("post_run_cell", getattr(ipython, "_inference_magics_errors", None))]
    for event, hook in hooks:
        try:
            ipython.events.unregister(event, hook)
        except ValueError:
            pass  # never registered
    if hasattr(ipython, "_inference_magics_errors"):
        del ipython._inference_magics_errors
    write_behind.release()


def _write_after_cells(ipython) -> None:
    """History writes wait for the end of each cell, not competing with it for the GIL."""
    from .. import write_behind

    for event, hook in (("pre_run_cell", write_behind.hold), ("post_run_cell", write_behind.release)):
        try:  # a second %load_ext does not add a second hook
            ipython.events.unregister(event, hook)
        except ValueError:
            pass
        ipython.events.register(event, hook)


def _remember_errors(ipython) -> None:
    """Keep each failed cell's error for %infer --fix (ours and interrupts never replace it)."""
    def remember(result) -> None:
        from ..last_error import remember_run

        remember_run(result, getattr(getattr(ipython, "compile", None), "_filename_map", None))

    try:  # a second %load_ext replaces the hook instead of adding one
        ipython.events.unregister("post_run_cell", getattr(ipython, "_inference_magics_errors"))
    except (AttributeError, ValueError):
        pass
    ipython._inference_magics_errors = remember
    ipython.events.register("post_run_cell", remember)


def _result_html(result) -> str:
    # the text is untrusted: shown through the same inert renderer as a streamed answer
    from .render import result_bundle

    return result_bundle(result)["text/html"]
