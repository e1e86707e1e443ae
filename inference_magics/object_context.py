"""Notebook objects in a `{var}` of a prompt, rendered for a model rather than with their repr:

- a DataFrame: shape, columns and dtypes, then a few head and tail rows as a Markdown table;
- a Series or an ndarray: shape, dtype and a preview;
- long lists, tuples, sets, dicts and strings: cut with "… N more";

each within a token budget (INFERENCE_CONTEXT_TOKENS, estimated at 4 characters a token), ending
with a line that says what was left out. Short values come out exactly as `str()` gives them.
Duck-typed: pandas and NumPy are never imported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4
CELL_CHARS = 40      # a table cell longer than this is cut (a long text column must not eat the budget)
MAX_COLUMNS = 20     # columns shown in a table; the rest are named in the columns line only
MAX_LISTED_COLUMNS = 200
SHOW_ALL_UP_TO = 50  # rows (or values) a frame or series may have to be shown whole when it fits


@dataclass
class Renderer:
    """Render values for one prompt; `notes` says, per field, what was shortened."""
    budget_tokens: int = 2000
    notes: list[str] = field(default_factory=list)

    @property
    def budget_chars(self) -> int:
        return max(200, self.budget_tokens * CHARS_PER_TOKEN)

    def render(self, path: str, value) -> str:
        kind = type(value).__name__
        if kind == "DataFrame" and hasattr(value, "columns") and hasattr(value, "dtypes"):
            return self._frame(path, value)
        if kind == "Series" and hasattr(value, "dtype") and hasattr(value, "head"):
            return self._series(path, value)
        if kind == "ndarray" and hasattr(value, "shape") and hasattr(value, "dtype"):
            return self._array(path, value)
        if isinstance(value, str):
            return self._string(path, value)
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            return self._collection(path, value)
        try:
            text = str(value)
        except Exception as exc:  # a user object's __str__ may raise anything: said as interpolate says it
            from .errors import ConfigError

            raise ConfigError(f"could not put {{{path}}} into the prompt: str() of it raised {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]} — pass a string instead.") from None
        return self._string(path, text)

    # --- the kinds ----------------------------------------------------------------------------
    def _string(self, path: str, text: str) -> str:
        limit = self.budget_chars
        if len(text) <= limit:
            return text
        left = len(text) - limit
        self.notes.append(f"{{{path}}}: {left:,} of {len(text):,} characters left out")
        from .privacy import cut_point  # never half a secret: the policy judges only what is kept

        limit = cut_point(text, limit)
        left = len(text) - limit
        return f"{text[:limit]}… {left:,} more characters"

    def _collection(self, path: str, value) -> str:
        whole = str(value)
        if len(whole) <= self.budget_chars:
            return whole
        is_dict = isinstance(value, dict)
        items = list(value.items()) if is_dict else list(value)
        opening, closing = ("{", "}") if is_dict or isinstance(value, (set, frozenset)) else \
            ("(", ")") if isinstance(value, tuple) else ("[", "]")
        shown, size = [], 2
        for item in items:
            text = f"{item[0]!r}: {_cut(repr(item[1]), self.budget_chars // 4)}" if is_dict else \
                _cut(repr(item), self.budget_chars // 4)
            if size + len(text) + 2 > self.budget_chars - 40:
                break
            shown.append(text)
            size += len(text) + 2
        left = len(items) - len(shown)
        what = "items" if is_dict else "elements"
        self.notes.append(f"{{{path}}}: {type(value).__name__} of {len(items):,} {what}, {left:,} left out")
        return f"{opening}{', '.join(shown)}, … {left:,} more{closing}"

    def _series(self, path: str, series) -> str:
        length = len(series)
        name = f" {series.name!r}" if getattr(series, "name", None) is not None else ""
        header = f"Series{name}: length {length:,}, dtype {series.dtype}"
        rows, shown = self._fit(lambda n: _series_rows(series, n), length)
        if shown < length:
            self.notes.append(f"{{{path}}}: {length - shown:,} of {length:,} values left out")
            rows += f"\n(shortened: {length - shown:,} of {length:,} values not shown)"
        return f"{header}\n{rows}"

    def _array(self, path: str, array) -> str:
        import numpy  # an ndarray exists, so NumPy is already imported

        header = f"ndarray: shape {tuple(array.shape)}, dtype {array.dtype}"
        size = int(array.size)
        for edge in (3, 2, 1):
            preview = numpy.array2string(array, threshold=50, edgeitems=edge, max_line_width=120)
            if len(preview) + len(header) < self.budget_chars:
                break
        else:
            preview = _cut(preview, self.budget_chars - len(header) - 60)
        if size > 50:
            self.notes.append(f"{{{path}}}: ndarray of {size:,} values, a preview of its edges")
            preview += f"\n(shortened: a preview of {size:,} values)"
        return f"{header}\n{preview}"

    def _frame(self, path: str, frame) -> str:
        n_rows, n_cols = frame.shape
        columns = list(frame.columns)
        listed = ", ".join(f"{c} ({t})" for c, t in list(zip(columns, frame.dtypes))[:MAX_LISTED_COLUMNS])
        if n_cols > MAX_LISTED_COLUMNS:
            listed += f", … {n_cols - MAX_LISTED_COLUMNS:,} more"
        header = f"DataFrame: {n_rows:,} rows × {n_cols:,} columns\ncolumns (dtype): {listed}"
        header = _cut(header, self.budget_chars // 2)
        table, shown = self._fit(lambda n: _frame_table(frame, n), n_rows, room=self.budget_chars - len(header))
        left_out = []
        if shown < n_rows:
            left_out.append(f"{n_rows - shown:,} of {n_rows:,} rows")
        if n_cols > MAX_COLUMNS:
            left_out.append(f"{n_cols - MAX_COLUMNS:,} of {n_cols:,} columns")
        footer = ""
        if left_out:
            self.notes.append(f"{{{path}}}: {' and '.join(left_out)} left out")
            footer = f"\n(shortened: {' and '.join(left_out)} not shown; cells over {CELL_CHARS} characters are cut)"
        return f"{header}\n\n{table}{footer}"

    def _fit(self, draw, total: int, room: int | None = None) -> tuple[str, int]:
        """The largest preview (5, 3, 2, 1 rows at each end) that fits the room, and how many rows it shows."""
        room = self.budget_chars if room is None else room
        whole = (total + 1) // 2 if total <= 2 * SHOW_ALL_UP_TO else None  # a small one whole, when it fits
        for each_end in (whole, 5, 3, 2, 1):
            if each_end is None:
                continue
            text = draw(each_end)
            shown = min(total, 2 * each_end)
            if len(text) <= room:
                return text, shown
        return _cut(text, max(room, 100)), shown


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    from .privacy import cut_point  # never half a secret: the policy judges only what is kept

    return text[:cut_point(text, max(limit - 1, 1))] + "…"


def _cell(value) -> str:
    text = " ".join(str(value).split()).replace("|", "\\|")
    return _cut(text, CELL_CHARS)


def _frame_table(frame, each_end: int) -> str:
    n_rows = len(frame)
    columns = list(frame.columns)[:MAX_COLUMNS]
    part = frame.iloc[:, :MAX_COLUMNS]
    if n_rows <= 2 * each_end:
        pieces, gap = [part], False
    else:
        pieces, gap = [part.head(each_end), part.tail(each_end)], True
    lines = ["| | " + " | ".join(_cell(c) for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for index, piece in enumerate(pieces):
        if index and gap:
            lines.append("| … " + "| … " * len(columns) + "|")
        for label, row in zip(piece.index, piece.itertuples(index=False, name=None)):
            lines.append(f"| {_cell(label)} | " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _series_rows(series, each_end: int) -> str:
    length = len(series)
    if length <= 2 * each_end:
        parts = [series]
    else:
        parts = [series.head(each_end), None, series.tail(each_end)]
    lines = []
    for part in parts:
        if part is None:
            lines.append("…")
            continue
        lines += [f"{_cell(label)}: {_cell(value)}" for label, value in zip(part.index, part.tolist())]
    return "\n".join(lines)
