"""The library is extended through its parameters, never patched from outside: no script, benchmark,
notebook source or autograder module assigns into a minbert_lib module or object."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the library and its tests (tests may monkeypatch, and undo it), and what .gitignore keeps out of the kit
SKIPPED = {"minbert_lib", "tests", "runs", "build", "__pycache__", "submitted", "autograded", "feedback", "zoo"}


def library_names(tree: ast.AST) -> set[str]:
    """The names an `import minbert_lib...` or `from minbert_lib... import ...` binds in the file."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] == "minbert_lib"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "minbert_lib":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def root_name(target: ast.AST) -> str | None:
    """`a` for a.b.c = ..., a.b[k] = ..., a[k].b = ...; None for a plain name."""
    if not isinstance(target, (ast.Attribute, ast.Subscript)):
        return None
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


def assigned_targets(node: ast.AST) -> list[ast.AST]:
    """What an assignment, augmented assignment, del or setattr(...) call writes to."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
        return [ast.Attribute(value=node.args[0], attr="?")] if node.args else []
    else:
        return []
    flat = []
    for target in targets:  # a, b.c = ... assigns to each element
        flat += target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
    return [t.value if isinstance(t, ast.Starred) else t for t in flat]


def library_assignments(source: str, filename: str) -> list[str]:
    """`file:line` of every assignment into an attribute or item of a name bound by a minbert_lib import."""
    tree = ast.parse(source, filename)
    names = library_names(tree)
    lines = {node.lineno for node in ast.walk(tree) for target in assigned_targets(node) if root_name(target) in names}
    return [f"{filename}:{line}" for line in sorted(lines)]


def kit_python_files() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not any(part in SKIPPED or part.startswith(".") for part in path.relative_to(ROOT).parts))


def test_no_file_outside_the_library_assigns_into_it():
    files = kit_python_files()
    assert ROOT / "results" / "data_curve.py" in files and ROOT / "benchmarks" / "bench_epoch.py" in files
    found = [hit for path in files
             for hit in library_assignments(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == [], ("these lines change minbert_lib from outside; give the library a parameter or hook "
                         f"instead: {found}")


def test_the_scan_finds_the_old_ways_of_patching_the_trainer():
    old = "\n".join([
        "from minbert_lib import schedules, train",            # 1
        "import minbert_lib.experiments as experiments",       # 2
        "from minbert_lib.experiments import BUDGETS",         # 3
        "tasks_of = train.schedule_tasks",                     # 4: reading is fine
        "train.schedule_tasks = lambda name: ('quora',)",      # 5
        "schedules.SCHEDULES['quora-only'] = print",           # 6
        "BUDGETS['check'] = None",                             # 7
        "experiments.EXPERIMENTS['X'].mnr += 1",               # 8
        "setattr(train, 'steps_per_epoch', len)",              # 9
        "settings = train.TrainSettings(); settings.seed = 1",  # 10: the script's own object
    ])
    assert library_assignments(old, "data_curve.py") == [f"data_curve.py:{line}" for line in (5, 6, 7, 8, 9)]
