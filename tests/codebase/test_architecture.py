"""Architecture checks (STYLE.md §4.2, §5): import layering and banned constructs.

Imports are checked two ways: by importing in a fresh interpreter and looking at
``sys.modules`` (what really gets loaded), and by scanning the source with ``ast``
(what each module asks for, including imports inside functions). Every failure
lists all violations it found, with file and line.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import bokeh_nb_client

PACKAGE_DIR = Path(bokeh_nb_client.__file__).resolve().parent
REPO = PACKAGE_DIR.parent
SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).as_posix()


def module_name(path: Path) -> str:
    parts = ["bokeh_nb_client", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# Parsed once, at collection: CPython 3.11.7 can raise a spurious SystemError
# ("AST constructor recursion depth mismatch", gh-106905) when ast.parse runs
# after deep recursion elsewhere in the same process.
_TREES = {path: _parse(path) for path in SOURCES}


def parse(path: Path) -> ast.Module:
    tree = _TREES.get(path)
    return tree if tree is not None else _parse(path)


@dataclass(frozen=True)
class Import:
    file: str
    line: int
    module: str  # absolute dotted name of the imported module
    names: tuple[str, ...]  # names imported from it ("" for ``import x``)

    def __str__(self) -> str:
        what = (
            f"from {self.module} import {', '.join(self.names)}"
            if any(self.names)
            else (f"import {self.module}")
        )
        return f"{self.file}:{self.line}: {what}"


def imports_of(path: Path) -> Iterator[Import]:
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel(path), node.lineno, alias.name, ("",))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            yield Import(rel(path), node.lineno, module, names)


ALL_IMPORTS = [imp for path in SOURCES for imp in imports_of(path)]


def top(module: str) -> str:
    return module.split(".", 1)[0]


def is_stdlib(module: str) -> bool:
    return top(module) in sys.stdlib_module_names or module == "__future__"


def report(violations: list[str], rule: str) -> None:
    assert not violations, f"{rule}; violations:\n  " + "\n  ".join(violations)


# -- what importing really loads (subprocess) ---------------------------------------------


def loaded_after(code: str) -> set[str]:
    """Modules a fresh interpreter has loaded after running ``code`` (minus its baseline)."""
    script = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return set(loaded)


FORBIDDEN_IN_CORE = ("asyncio", "aiohttp", "bokeh", "tornado", "IPython", "ipywidgets")


def forbidden(loaded: set[str]) -> list[str]:
    """The forbidden top-level packages among ``loaded``."""
    return sorted({top(m) for m in loaded if top(m) in FORBIDDEN_IN_CORE})


def test_protocol_package_alone_imports_only_the_stdlib() -> None:
    # Load bokeh_nb_client.protocol without running the parent package's __init__,
    # which (by design) imports the whole public API.
    code = (
        "import importlib.util, types\n"
        f"parent = types.ModuleType('bokeh_nb_client'); parent.__path__ = [{str(PACKAGE_DIR)!r}]\n"
        "sys.modules['bokeh_nb_client'] = parent\n"
        "import bokeh_nb_client.protocol"
    )
    report(forbidden(loaded_after(code)), "bokeh_nb_client.protocol must import only the stdlib")


def test_importing_bokeh_nb_client_protocol_loads_no_asyncio_aiohttp_or_bokeh() -> None:
    # STYLE.md §4.2: "Importing bokeh_nb_client.protocol must not import asyncio,
    # aiohttp or bokeh." This is the plain import a user or a tool would do.
    report(
        forbidden(loaded_after("import bokeh_nb_client.protocol")),
        "`import bokeh_nb_client.protocol` must not load asyncio, aiohttp or bokeh "
        "(the package __init__ imports the client eagerly)",
    )


def test_engine_alone_loads_no_third_party_module() -> None:
    code = (
        "import types\n"
        f"parent = types.ModuleType('bokeh_nb_client'); parent.__path__ = [{str(PACKAGE_DIR)!r}]\n"
        "sys.modules['bokeh_nb_client'] = parent\n"
        "import bokeh_nb_client.engine"
    )
    third_party = sorted(
        m for m in loaded_after(code) if not is_stdlib(m) and top(m) != "bokeh_nb_client"
    )
    report(third_party, "engine.py must import only the stdlib")


# -- who imports what (ast) -----------------------------------------------------------------


def test_protocol_imports_only_stdlib_and_exceptions() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.file.startswith("protocol/")
        and not is_stdlib(imp.module)
        and not imp.module.startswith(("bokeh_nb_client.protocol", "bokeh_nb_client.exceptions"))
        and imp.module != "bokeh_nb_client"
    ]
    report(violations, "protocol/* may import only the stdlib and bokeh_nb_client.exceptions")


def test_engine_imports_only_stdlib_and_exceptions() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.file == "engine.py"
        and not is_stdlib(imp.module)
        and imp.module != "bokeh_nb_client.exceptions"
    ]
    report(violations, "engine.py may import only the stdlib (and the error tree)")


def test_only_the_websocket_transport_imports_aiohttp() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if top(imp.module) == "aiohttp" and imp.file != "transport/websocket.py"
    ]
    report(violations, "only transport/websocket.py may import aiohttp")


# Display-related bokeh APIs the Jupyter front end may use directly.
DISPLAY_MODULES = ("bokeh.embed", "bokeh.resources", "bokeh.util.browser", "bokeh.io.notebook")
DISPLAY_NAMES_FROM_BOKEH_IO = {"show", "output_notebook", "push_notebook"}


def display_related(imp: Import) -> bool:
    if imp.module.startswith(DISPLAY_MODULES):
        return True
    return imp.module == "bokeh.io" and set(imp.names) <= DISPLAY_NAMES_FROM_BOKEH_IO


# bokeh's public model-building API: what users write apps with. Front ends (the
# Jupyter layer, the demo) and the bundled server apps may use it; the internals
# (bokeh.document, bokeh.core, bokeh.protocol, bokeh.util, bokeh.server,
# bokeh.client) stay behind the _bokeh package.
MODEL_API_MODULES = ("bokeh.models", "bokeh.layouts", "bokeh.plotting", "bokeh.palettes")
FRONT_ENDS = ("jupyter/", "demo.py", "apps/")


def model_api(imp: Import) -> bool:
    if imp.module.startswith(MODEL_API_MODULES):
        return True
    return imp.module == "bokeh.io" and set(imp.names) <= {"curdoc"}


def test_only_the_bokeh_adapter_imports_bokeh_internals() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if top(imp.module) == "bokeh"
        and not imp.file.startswith("_bokeh/")
        and not (imp.file.startswith(FRONT_ENDS) and (display_related(imp) or model_api(imp)))
    ]
    report(
        violations,
        "only the _bokeh package may import bokeh internals (front ends may import display APIs: "
        f"{', '.join(DISPLAY_MODULES)}; and the model API: {', '.join(MODEL_API_MODULES)}, "
        "curdoc)",
    )


def test_only_jupyter_imports_ipython_ipywidgets_traitlets() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if top(imp.module) in {"IPython", "ipywidgets", "traitlets", "ipykernel"}
        and not imp.file.startswith("jupyter/")
        # The Jupyter server extension is configured the way jupyter_server is, with
        # a traitlets Configurable (c.BokehProxy...): traitlets, but no IPython.
        and not (imp.file.startswith("server_extension/") and top(imp.module) == "traitlets")
    ]
    report(violations, "only jupyter/* may import IPython, ipywidgets, traitlets or ipykernel")


# The Jupyter server extension runs in the Jupyter server process, not in the
# kernel: a front end of its own, on tornado and jupyter_server. The kernel side
# (jupyter/) and the extension share only the stdlib-only contract module.
SERVER_EXTENSION_THIRD_PARTY = {"tornado", "jupyter_server", "traitlets"}
SERVER_EXTENSION_CONTRACT = "bokeh_nb_client.server_extension.contract"


def test_server_extension_imports_only_tornado_jupyter_server_and_itself() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.file.startswith("server_extension/")
        and not is_stdlib(imp.module)
        and top(imp.module) not in SERVER_EXTENSION_THIRD_PARTY
        and not imp.module.startswith("bokeh_nb_client.server_extension")
        # the package version, for the status endpoint
        and not (imp.module == "bokeh_nb_client" and imp.names == ("__version__",))
    ]
    report(
        violations,
        "server_extension/* may import the stdlib, tornado, jupyter_server, traitlets and "
        "itself (and bokeh_nb_client.__version__)",
    )


def test_only_the_contract_of_the_server_extension_is_imported_elsewhere() -> None:
    violations = [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.module.startswith("bokeh_nb_client.server_extension")
        and not imp.file.startswith("server_extension/")
        and imp.module != SERVER_EXTENSION_CONTRACT
    ]
    violations += [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.file in ("server_extension/contract.py", "server_extension/__init__.py")
        and not is_stdlib(imp.module)
        and not imp.module.startswith("bokeh_nb_client.server_extension")
        and top(imp.module) != "jupyter_server"  # __init__: a TYPE_CHECKING-only import
        and not (imp.module == "bokeh_nb_client" and imp.names == ("__version__",))
    ]
    report(
        violations,
        "outside server_extension/, only server_extension.contract may be imported, and it "
        "(with the package __init__) imports only the stdlib",
    )


def test_importing_the_extension_contract_loads_no_server_or_kernel_module() -> None:
    loaded = loaded_after(f"import {SERVER_EXTENSION_CONTRACT}")
    heavy = {"tornado", "jupyter_server", "traitlets", "IPython", "bokeh", "aiohttp"}
    report(
        sorted({top(m) for m in loaded if top(m) in heavy}),
        "importing server_extension.contract (done by the kernel on show()) must load only "
        "the stdlib",
    )


# Lower layers must not import higher ones (PROTOCOL ← transport ← connection ←
# document sync ← session ← client / jupyter). Every module of the package is
# listed (a new module fails test_every_module_has_a_layer until it is placed).
LAYER = {
    "bokeh_nb_client.exceptions": 0,
    "bokeh_nb_client.discovery": 1,
    "bokeh_nb_client.protocol": 1,
    "bokeh_nb_client.status": 1,
    "bokeh_nb_client.engine": 1,
    "bokeh_nb_client._bokeh": 1,
    "bokeh_nb_client._arrays": 1,
    "bokeh_nb_client.warn": 1,
    "bokeh_nb_client.lifecycle": 1,
    "bokeh_nb_client.pending": 1,
    "bokeh_nb_client.reconnect": 1,
    "bokeh_nb_client.transport": 2,
    "bokeh_nb_client.callbacks": 2,
    "bokeh_nb_client.options": 2,
    "bokeh_nb_client.connection": 3,
    "bokeh_nb_client.outbox": 4,
    "bokeh_nb_client.docsync": 5,
    # The session is four modules of one layer: the public surface, its core, the
    # reconnect orchestration and the registry of open sessions (the last two name
    # the session for typing only).
    "bokeh_nb_client.reconnector": 6,
    "bokeh_nb_client.session_core": 6,
    "bokeh_nb_client.session": 6,
    "bokeh_nb_client.registry": 6,
    "bokeh_nb_client.inline": 7,
    "bokeh_nb_client.client": 7,
    "bokeh_nb_client.async_api": 7,
    "bokeh_nb_client.local_server": 7,
    "bokeh_nb_client.jupyter": 8,
    "bokeh_nb_client.server_extension": 8,
    "bokeh_nb_client.apps": 8,
    "bokeh_nb_client.demo": 9,
}
#: The package's ``__init__`` (lazy re-exports, ``__version__``) sits beside the
#: layers: ``from bokeh_nb_client import _bokeh`` names a submodule, not it.
PACKAGE_ROOT = "bokeh_nb_client"

#: The one declared upward hook: ``inline.py`` loads the notebook front end by
#: name (``client.show()`` displays inline in a kernel), so the synchronous API
#: does not import the Jupyter layer. Any other reference by name is a violation.
DECLARED_HOOKS = {"bokeh_nb_client.inline": ("bokeh_nb_client.jupyter.display",)}


def test_every_module_has_a_layer() -> None:
    unlisted = [
        name
        for name in map(module_name, SOURCES)
        if name != PACKAGE_ROOT and layer_of(name) is None
    ]
    report(unlisted, "every module of the package is placed in LAYER")


def test_only_declared_hooks_name_a_higher_layer() -> None:
    violations = []
    for path in SOURCES:
        module = module_name(path)
        own = layer_of(module)
        if own is None:
            continue
        for node in ast.walk(parse(path)):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            target = layer_of(node.value) if node.value.startswith("bokeh_nb_client.") else None
            if target is None or target <= own:
                continue
            if node.value not in DECLARED_HOOKS.get(module, ()):
                violations.append(f"{module} names {node.value!r} (layer {target})")
    report(violations, "a higher layer is reached by name only through a declared hook")


def layer_of(module: str) -> int | None:
    for prefix, layer in sorted(LAYER.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for path in SOURCES:
        own = layer_of(module_name(path))
        if own is None:
            continue
        for imp in imports_of(path):
            target = layer_of(imp.module)
            if target is not None and target > own:
                violations.append(f"{imp} (layer {own} imports layer {target})")
    report(violations, "dependencies point down only")


def test_only_exceptions_defines_exception_classes() -> None:
    import importlib
    import inspect
    import pkgutil

    violations = []
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "bokeh_nb_client."):
        if info.name.startswith("bokeh_nb_client.apps"):
            continue  # bokeh server apps: run by `bokeh serve`, not importable alone
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and module.__name__ != "bokeh_nb_client.exceptions"
            ):
                violations.append(f"{module.__name__}.{name}")
    # Nested or conditional definitions, by source: a class deriving from a name
    # that looks like an exception.
    for path in SOURCES:
        if rel(path) == "exceptions.py":
            continue
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    base_name = ast.unparse(base).rsplit(".", 1)[-1]
                    if base_name.endswith(("Error", "Exception", "Warning", "Interrupt", "Exit")):
                        violations.append(f"{rel(path)}:{node.lineno}: class {node.name}")
    report(sorted(set(violations)), "only exceptions.py defines exception classes")


# -- banned constructs -----------------------------------------------------------------------------


def banned_constructs(path: Path) -> Iterator[str]:
    name = rel(path)
    for node in ast.walk(parse(path)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            if any(top(m) == "nest_asyncio" for m in modules):
                yield f"{where}: nest_asyncio"
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "time"
                and any(alias.name == "sleep" for alias in node.names)
            ):
                yield f"{where}: from time import sleep"
        elif isinstance(node, ast.Attribute):
            if node.attr == "run_until_complete" and name != "engine.py":
                yield f"{where}: run_until_complete outside engine.py"
            if node.attr == "get_event_loop":
                yield f"{where}: asyncio.get_event_loop()"
            if (
                node.attr == "sleep"
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
            ):
                yield f"{where}: time.sleep"
        elif isinstance(node, ast.ExceptHandler):
            if node.type is None:
                yield f"{where}: bare except:"
            if len(node.body) == 1 and isinstance(node.body[0], ast.Pass):
                yield f"{where}: except ...: pass (swallowed error)"


def test_banned_constructs_are_absent() -> None:
    violations = [v for path in SOURCES for v in banned_constructs(path)]
    report(
        violations,
        "banned: nest_asyncio, run_until_complete outside engine.py, "
        "asyncio.get_event_loop(), bare except, except-pass, time.sleep",
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import nest_asyncio", "nest_asyncio"),
        ("loop.run_until_complete(f())", "run_until_complete"),
        ("asyncio.get_event_loop()", "get_event_loop"),
        ("try:\n    f()\nexcept:\n    raise", "bare except"),
        ("try:\n    f()\nexcept Exception:\n    pass", "except ...: pass"),
        ("import time\ntime.sleep(1)", "time.sleep"),
        ("from time import sleep", "from time import sleep"),
    ],
)
def test_the_ban_scanner_catches_each_construct(
    tmp_path: Path, source: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    bad = package / "bad.py"
    bad.write_text(source + "\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", package)
    assert any(expected in v for v in banned_constructs(bad))
