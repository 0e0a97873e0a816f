"""The library's layout, as DEVELOPERS.md states it: imports go one way, each names the package, and no
module reaches into another's private names. Read from the source with ast, so a lazy import inside a
function counts as much as one at the top."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def _course_lib_imports(tree):
    """Line numbers of relative imports; course_lib modules imported; local name -> module; private names
    imported with ``from course_lib.x import _name``."""
    relative, imported, aliases, private = [], set(), {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("course_lib.")}
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            relative.append(node.lineno)
        elif node.module == "course_lib":
            imported |= {alias.name for alias in node.names}
            aliases |= {alias.asname or alias.name: alias.name for alias in node.names}
        elif node.module and node.module.startswith("course_lib."):
            imported.add(node.module.split(".")[1])
            private += [alias.name for alias in node.names if alias.name.startswith("_")]
    return relative, imported, aliases, private


def imports_of(source):
    """(relative imports, course_lib modules imported, private names used on course_lib modules)."""
    tree = ast.parse(source)
    relative, imported, aliases, private_imports = _course_lib_imports(tree)
    private = sorted(
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    )
    return relative, imported, private + private_imports


def graph():
    return {name: imports_of((PACKAGE / f"{name}.py").read_text())[1] - {name} for name in MODULES}


@pytest.mark.parametrize("name", MODULES)
def test_every_import_names_the_package_and_no_private_name_is_used(name):
    relative, _, private = imports_of((PACKAGE / f"{name}.py").read_text())
    assert relative == [], f"course_lib/{name}.py: relative imports on lines {relative}"
    assert private == [], f"course_lib/{name}.py reaches into private names: {private}"


def test_imports_go_one_way():
    edges = graph()
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join(path + [name])
        state[name] = "open"
        for other in sorted(edges.get(name, ())):
            visit(other, path + [name])
        state[name] = "done"

    for name in MODULES:
        visit(name, [])


def test_the_leaf_modules_import_nothing_from_the_library():
    edges = graph()
    for leaf in ("validation", "landscapes", "theory", "trajectories", "plots", "harness"):
        assert edges[leaf] == set(), f"{leaf} imports {sorted(edges[leaf])}"


def test_the_checker_sees_what_it_forbids():
    relative, imported, private = imports_of(
        "from . import optim\nfrom course_lib import bugs as b\nfrom course_lib.optim import _helper\n"
        "def f():\n    return b._nesterov_one_minus_rho\n"
    )
    assert relative == [1]
    assert imported == {"bugs", "optim"}
    assert private == ["b._nesterov_one_minus_rho", "_helper"]
