"""The layout: everything outside inference_magics/notebook/ is a plain Python library that
imports nothing from IPython, ipywidgets or anywidget; the notebook layer is sugar over it."""
import subprocess
import sys

# every module of the package but the notebook layer, imported where IPython cannot be imported
CODE = """
import importlib, pkgutil, sys

class NoIPython:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("IPython", "ipykernel", "ipywidgets", "anywidget"):
            raise ImportError(f"{name} imported by the library")

sys.meta_path.insert(0, NoIPython())
import inference_magics
names = [m.name for m in pkgutil.walk_packages(inference_magics.__path__, "inference_magics.")
         if not m.name.startswith("inference_magics.notebook")]
for name in names:
    importlib.import_module(name)
assert not [m for m in sys.modules if m.split(".")[0] in ("IPython", "ipywidgets", "anywidget")]
print(len(names))
"""


def test_the_library_imports_without_ipython():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 30  # every module, not an empty walk


def test_load_ext_registers_the_notebook_layer(shell):
    magics = shell.magics_manager.magics
    assert {"infer", "experiment", "embed", "models", "infer_health"} <= set(magics["line"]) | set(magics["cell"])
    assert "inference_magics.notebook.magics" in __import__("sys").modules
