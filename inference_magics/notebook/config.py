"""`%config InferenceMagics.<name>`: one trait per row of settings.VARS but the keys (keys belong
in the environment or .env, never in a notebook's history). Each trait is a view of its setting:
reading it gives the value in force (whatever its source), writing it validates and keeps a
per-kernel override, and a rejected value changes nothing."""
from __future__ import annotations

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
