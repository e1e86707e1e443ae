"""The code in an answer: its first fenced block, or the whole answer when it is only code.
Used by `Result.code`, `--insert` and `--fix` (which offer it as a new cell, never run it)."""
from __future__ import annotations

import ast
import re

# an opening fence of 3+ backticks or tildes with an optional info string, up to the same fence
_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_UNCLOSED = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[^\n`]*\n(?P<body>.*)\Z", re.MULTILINE | re.DOTALL)


def extract_code(text: str) -> str | None:
    """The first fenced block's body (an answer cut off inside its block gives what arrived), else
    the whole text when it parses as Python statements and is not a bare word or number; else None."""
    if not text or not text.strip():
        return None
    match = _FENCE.search(text) or _UNCLOSED.search(text)
    if match:
        body = match.group("body").rstrip()
        return body or None
    stripped = text.strip()
    try:
        tree = ast.parse(stripped)
    except (SyntaxError, ValueError):
        return None
    if all(isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)) for node in tree.body):
        return None  # "Paris" or "42" is an answer, not code
    return stripped
