"""`{name}` interpolation: exactly once, unknown names kept, code braces untouched."""
import pytest

from inference_magics.errors import ConfigError
from inference_magics.interpolate import interpolate


class Exploding:
    def __str__(self):
        raise ValueError("no text for you")


class Doc:
    title = "On Brackets"
    tags = ["a", "b"]


NS = {"name": "Ada", "n": 3, "doc": Doc(), "items": [10, 20, 30], "tricky": "{name}", "bad": Exploding(),
      "In": ["", "x = 1", "print(x)"]}


@pytest.mark.parametrize("template, expected", [
    ("Hello {name}!", "Hello Ada!"),
    ("{name} has {n} cats", "Ada has 3 cats"),
    ("Title: {doc.title}, first tag {doc.tags[0]}, last item {items[-1]}", "Title: On Brackets, first tag a, last item 30"),
    ("unknown {nobody} stays", "unknown {nobody} stays"),
    ("unknown attribute {doc.missing} stays", "unknown attribute {doc.missing} stays"),
    ("out of range {items[9]} stays", "out of range {items[9]} stays"),
    ("literal {{name}} is escaped", "literal {name} is escaped"),
    ("replaced once, not twice: {tricky}", "replaced once, not twice: {name}"),
    ("cell {In[2]}", "cell print(x)"),
    ('d = {"a": {"b": 1}}', 'd = {"a": {"b": 1}}'),
    ("{k: v for k, v in pairs}", "{k: v for k, v in pairs}"),
    ("f'{x!r:>10}' and {0} and {}", "f'{x!r:>10}' and {0} and {}"),
    ("echo ${HOME} $name", "echo ${HOME} $name"),
    ("def f():\n    return {'n': n}\n", "def f():\n    return {'n': n}\n"),
    ("struct { int a; }; {{ jinja }}", "struct { int a; }; {{ jinja }}"),
])
def test_interpolation(template, expected):
    assert interpolate(template, NS) == expected


def test_a_raising_str_gives_one_clear_line():
    with pytest.raises(ConfigError) as err:
        interpolate("look at {bad}", NS)
    assert "{bad}" in err.value.message and "ValueError: no text for you" in err.value.message


def test_a_huge_value_is_refused_with_its_size():
    with pytest.raises(ConfigError, match="too long for a prompt"):
        interpolate("{big}", {"big": "x" * 2_000_000})


def test_invalid_utf8_from_bytes_is_replaced_not_fatal():
    text = b"caf\xe9".decode("utf-8", "surrogateescape")
    out = interpolate("{t}", {"t": text})
    out.encode("utf-8")  # sendable
    assert out.startswith("caf")
