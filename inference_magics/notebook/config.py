"""`%config InferenceMagics.<name>`: one trait per row of settings.VARS but the keys (keys belong
in the environment or .env, never in a notebook's history). Each trait is a view of its setting:
reading it gives the value in force (whatever its source), writing it validates and keeps a
per-kernel override, and a rejected value changes nothing."""
from __future__ import annotations

import sys

from traitlets import HasTraits, MetaHasTraits, TraitType

from .. import settings


class Setting(TraitType):
    info_text = "a value as its environment variable takes it (None: drop the override)"

    def __init__(self, var: settings.Var):
        super().__init__(default_value=None, allow_none=True, help=f"{var.help} Overrides {var.env[0]}.")
        self.var = var
        self.tag(config=True)

    def get(self, obj, cls=None):
        return settings.current(self.var.field)

    def set(self, obj, value):
        settings.set_override(self.var.field, value)  # a ConfigError names what is accepted; nothing is kept

    def default_value_repr(self) -> str:
        return repr(self.var.default)


CONFIGURABLE = [var.field for var in settings.VARS if var.configurable]

#: mixed into InferenceMagics, whose name is the %config section
SettingTraits = MetaHasTraits("SettingTraits", (HasTraits,),
                              {var.field: Setting(var) for var in settings.VARS if var.configurable})


def drop_unknown(configurable, cfg) -> None:
    """Names of cfg's InferenceMagics section that are no setting: removed, each with one line on
    stderr naming the close match (or where a key belongs) — instead of traitlets' Python warning,
    which shows a file path and a line of IPython's source."""
    from difflib import get_close_matches

    sections = [cfg[name] for name in configurable.section_names() if name in cfg]  # in place: a copy
    keys = {var.field for var in settings.VARS if not var.configurable}        # would warn again on merge
    for name in sorted({n for section in sections for n in section if n not in CONFIGURABLE and not n[:1].isupper()}):
        for section in sections:
            section.pop(name, None)
        if name in keys:
            why = "keys belong in the environment or .env, never in a notebook's history"
        else:
            close = get_close_matches(name, CONFIGURABLE, n=1)
            why = f"did you mean {close[0]}?" if close else "%config InferenceMagics lists the settings"
        print(f"InferenceMagics has no setting {name!r} — {why}", file=sys.stderr, flush=True)


def drop_rejected(configurable, cfg) -> None:
    """Values of cfg's InferenceMagics section that their setting refuses, met while the extension
    loads (an ipython_config.py, or a %config run before %load_ext): removed, each with its one line
    on stderr, so that the magics still load and the environment's value (or the default) is in force.
    Later, IPython's %config reports a refused value itself and keeps the old one."""
    from ..errors import ConfigError

    sections = [cfg[name] for name in configurable.section_names() if name in cfg]
    for section in sections:
        for name in [n for n in section if n in CONFIGURABLE]:
            try:
                settings.set_override(name, section[name])
            except ConfigError as exc:
                section.pop(name)
                var = next(var for var in settings.VARS if var.field == name)
                print(f"{exc.message} Ignored: {var.env[0]} or its default is in force.", file=sys.stderr, flush=True)
