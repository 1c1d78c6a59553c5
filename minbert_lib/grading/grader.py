"""The grader: runs a notebook's tests against a submission's definitions, outside its kernel.

    python -m minbert_lib.grading.grader SOURCE RELEASE SUBMISSION --out RESULT.json [--sandbox LIMITS.json]

The grader never runs student code. From the submission it takes only the solution cells
(by their nbgrader grade_id, as the release defines them) and sends them, with the course's
own cells, to a runner (`minbert_lib.grading.runner`) in a sandbox. Then it runs each test
cell of the course's *source* notebook, hidden tests included, here, with the student's
definitions as proxies (`remote.RemoteObject`): the checks, torch and the reference are this
process's own, imported fresh, so nothing the notebook did in its kernel, and nothing the
runner does, changes how a result is compared. Each test cell passes (its points) or fails (0)
with one line of feedback; RESULT.json holds them for `course.py`, which writes the gradebook.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import difflib
import inspect
import io
import json
import keyword
import os
import re
import symtable
import sys
import time
import tokenize
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minbert_lib.grading.answer_keys import answer_keys
from minbert_lib.grading.common import MISTAKES
from minbert_lib.grading.remote import (AnswerKeyUsed, Runner, RunnerFailed, Session, StudentError,
                                        builtin_exception_name)

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CELL_CPU_SECONDS = 120.0    # one cell or one test's call, in CPU seconds: quick training takes under 25
CELL_WALL_SECONDS = 300.0   # the same in wall-clock seconds, for code that sleeps or blocks
COURSE_CELL_CPU_SECONDS = 600.0  # a course cell (the quick training of 04-06 takes 30-120 CPU seconds)
HARD_MARGIN = 30.0          # past its own limit plus this, the runner is killed (code that ignores the limit)


@dataclass
class TestResult:
    grade_id: str
    max_points: float
    points: float = 0.0
    message: str = ""


@dataclass
class Grading:
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    copies: list[str] = field(default_factory=list)  # for the instructor: cells that copy the answer key

    def as_json(self) -> dict:
        return {"tests": [asdict(t) for t in self.tests], "notes": self.notes, "seconds": self.seconds,
                "copies": self.copies}


# --- near-copies of the answer key --------------------------------------------------------------

COPY_SIMILARITY = 0.97  # the course's own solutions score 0.57-0.93 against the library


def code_tokens(code: str) -> list[str]:
    """A cell's tokens with names, strings and numbers made anonymous, comments and layout dropped."""
    out = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
                continue
            if token.type == tokenize.STRING:
                out.append("STR")
            elif token.type == tokenize.NUMBER:
                out.append("NUM")
            elif token.type == tokenize.NAME and not keyword.iskeyword(token.string):
                out.append("ID")
            else:
                out.append(token.string)
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def similarity(code: str, reference: str) -> float:
    """How alike two pieces of code are once renamed and reformatted (1.0: the same tokens)."""
    a, b = code_tokens(code), code_tokens(reference)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() if a and b else 0.0


def near_copies(assignment: str, solutions: dict[str, str]) -> list[str]:
    """The solution cells that are the answer key's source with names changed: for the instructor to check."""
    from minbert_lib.grading.runner import resolve_name

    found = []
    for gid, names in answer_keys(assignment).items():
        try:
            reference = "\n".join(inspect.getsource(resolve_name(name)[2]) for name in names)
        except (ImportError, AttributeError, OSError, TypeError):
            continue
        score = similarity(solutions.get(gid, ""), reference)
        if score >= COPY_SIMILARITY and len(code_tokens(solutions.get(gid, ""))) >= 30:
            found.append(f"cell {gid!r} is {score:.0%} like the library's {', '.join(names)} "
                         "(names and layout aside): check by hand that the work is the student's")
    return found


# --- reading the notebooks ---------------------------------------------------------------------

def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def role(cell) -> str:
    meta = nbgrader_meta(cell)
    if meta.get("grade") and not meta.get("solution") and cell.get("cell_type") == "code":
        return "tests"
    if meta.get("solution") and not meta.get("grade") and cell.get("cell_type") == "code":
        return "solution"
    if meta.get("grade"):
        return "written"
    return "other"


def source_of(cell) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else str(text)


def student_solutions(release: dict, submitted: dict | None) -> tuple[dict[str, str], list[str]]:
    """grade_id -> the student's code for each solution cell of the release, and notes on what was odd.

    The release decides which cells exist: a cell the submission deleted keeps the release's
    stub (which raises NotImplementedError); a cell copied in JupyterLab (two cells with one
    grade_id) counts once, the last copy, as a kernel would have it.
    """
    wanted = [nbgrader_meta(c).get("grade_id") for c in release["cells"] if role(c) == "solution"]
    stubs = {nbgrader_meta(c).get("grade_id"): source_of(c) for c in release["cells"] if role(c) == "solution"}
    found: dict[str, list] = {gid: [] for gid in wanted}
    for cell in (submitted or {}).get("cells", []):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in found:
            found[gid].append(cell)
    code, notes = {}, []
    for gid in wanted:
        cells = found[gid]
        if not cells:
            notes.append(f"solution cell {gid!r} is missing: graded as the release left it")
            code[gid] = stubs[gid]
            continue
        if len(cells) > 1:
            notes.append(f"solution cell {gid!r} appears {len(cells)} times: the last copy was graded")
        if cells[-1].get("cell_type") != "code":
            notes.append(f"solution cell {gid!r} was turned into {cells[-1].get('cell_type')}: graded as code")
        code[gid] = source_of(cells[-1])
    return code, notes


def defined_names(source: str) -> set[str]:
    """Names a cell defines at its top level (functions, classes, assignments; not its imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


def loaded_names(source: str) -> set[str]:
    """The global names a piece of code reads: at its top level, and inside its functions, classes
    and comprehensions where no local binding hides them (a function's own `batch` is not the
    notebook's `batch`)."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return set()
    names, scopes = set(), [table]
    while scopes:
        scope = scopes.pop()
        top = scope.get_type() == "module"
        names.update(s.get_name() for s in scope.get_symbols() if s.is_referenced() and (top or s.is_global()))
        scopes.extend(scope.get_children())
    return names


NAMED_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
DEFINITIONS = (ast.Import, ast.ImportFrom) + NAMED_DEFINITIONS


def definitions_only(source: str) -> str:
    """A course cell without its statements that do work: imports, functions, classes and constants."""
    tree = ast.parse(source)
    kept = [node for node in tree.body if isinstance(node, DEFINITIONS) or (
        isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(node, "value", None), ast.Constant))]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def runner_cells(source: dict, solutions: dict[str, str],
                 only: set[str] | None = None) -> list[tuple[str, str, bool]]:
    """(label, code, is a course cell) for the runner, in notebook order: the course's cells and the
    student's solution cells.

    A course cell runs whole when a test (or a cell that runs whole) needs a name it computes,
    e.g. the predictions of a training cell; otherwise only its definitions run, so plots and
    training that no test reads cost nothing. `only` limits the tests considered to those grade_ids.
    """
    cells = [c for c in source["cells"] if c.get("cell_type") == "code"]
    needed: set[str] = set()
    full: set[int] = set()
    for index in reversed(range(len(cells))):  # a name is needed when a later cell reads it
        cell, code = cells[index], source_of(cells[index])
        if role(cell) == "solution" or (role(cell) == "tests" and (
                only is None or nbgrader_meta(cell).get("grade_id") in only)):
            needed |= loaded_names(code)
        elif cell_assigns(code) & (needed | read_by_needed_definitions(code, needed)):
            full.add(index)
            needed |= loaded_names(code)
        else:
            needed |= loaded_names(definitions_only(code))
    program = []
    for index, cell in enumerate(cells):
        gid = nbgrader_meta(cell).get("grade_id")
        if role(cell) == "tests":
            continue
        if role(cell) == "solution":
            program.append((f"your cell {gid!r}", solutions.get(gid, ""), False))
        elif index in full:
            program.append((f"course cell {index + 1}", source_of(cell), True))
        else:
            program.append((f"course cell {index + 1}", definitions_only(source_of(cell)), True))
    return program


def read_by_needed_definitions(source: str, needed: set[str]) -> set[str]:
    """The global names read by the functions and classes a cell defines that later cells need,
    and by those they call: `encode` reads the `tokenizer` its own cell makes."""
    definitions = {node.name: loaded_names(ast.unparse(node)) for node in ast.parse(source).body
                   if isinstance(node, NAMED_DEFINITIONS)}
    wanted, reads = set(), set()
    pending = [name for name in definitions if name in needed]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            reads |= definitions[name]
            pending.extend(n for n in definitions[name] if n in definitions)
    return reads


def cell_assigns(source: str) -> set[str]:
    """Names a cell's working statements (not defs, classes or imports) bind or change at its top
    level: `x = ...`, `x[key] = ...`, `x.attr = ...`, `x += ...`, `x.append(...)`."""
    tree = ast.parse(source)
    names = set()
    for node in tree.body:
        if isinstance(node, DEFINITIONS):
            continue
        loop_variables = {id(target) for comp in ast.walk(node) if isinstance(comp, ast.comprehension)
                          for target in ast.walk(comp.target)}  # `x` of `[... for x in ...]` is the comprehension's own
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store) and id(inner) not in loop_variables:
                names.add(inner.id)
            elif isinstance(inner, (ast.Subscript, ast.Attribute)) and isinstance(inner.ctx, ast.Store):
                names.add(root_name(inner))
            elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                    and isinstance(inner.func.value, ast.Name):
                names.add("." + inner.func.value.id)  # a method call: a change only if the name is a variable
    variables = {n for n in names if not n.startswith(".")}
    return variables | {n[1:] for n in names if n.startswith(".") and n[1:] in variables}


def root_name(node: ast.AST) -> str:
    """`runs` for `runs["TM1"]` or `runs.best.score`."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def names_under_test(source: str) -> set[str]:
    """The names a test cell tests: the first argument of each `checks.check_*(...)` call, and
    every name it calls directly (`merge_heads(split_heads(x))`). Other arguments (the class a
    training step is tried on, say) are helpers, whose answer keys may be used."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            names.add(node.func.id)
        elif isinstance(node.func, ast.Attribute) and node.func.attr.startswith("check_") and node.args:
            first = node.args[0]
            names.update({first.id} if isinstance(first, ast.Name) else set())
    return names


def split_hidden(source: str) -> tuple[str, str]:
    """(visible part, hidden part) of a test cell."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            inside = True
        elif line.strip() == HIDDEN_END:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), "\n".join(hidden)


# --- grading -----------------------------------------------------------------------------------

class Grader:
    def __init__(self, assignment: str, source: dict, release: dict, submitted: dict | None,
                 runner_command: list[str], runner_env: dict[str, str], runner_cwd: str, threads: int = 1,
                 master_dir: Path | None = None, cell_cpu: float = CELL_CPU_SECONDS,
                 cell_wall: float = CELL_WALL_SECONDS, only: set[str] | None = None):
        self.assignment, self.source = assignment, source
        self.cell_cpu, self.cell_wall = cell_cpu, cell_wall
        self.only = only  # grade these test cells only (the zoo's quick cases); None: all of them
        self.master_dir = master_dir  # the course's own sanity.pt: the checks read their cases there
        self.solutions, self.notes = student_solutions(release, submitted)
        self.command, self.env, self.cwd, self.threads = runner_command, runner_env, runner_cwd, threads
        self.solution_names = {nbgrader_meta(c).get("grade_id"): defined_names(source_of(c))
                               for c in source["cells"] if role(c) == "solution"}
        self.session: Session | None = None
        self.cell_errors: dict[str, str] = {}
        self.base = self.trusted_namespace()

    def trusted_namespace(self) -> dict[str, Any]:
        """The course's imports, run here: the checks and torch of this process, never the student's."""
        namespace: dict[str, Any] = {"__name__": "__grader__", "__builtins__": builtins}
        for cell in self.source["cells"]:
            if cell.get("cell_type") == "code" and role(cell) == "other":
                tree = ast.parse(source_of(cell))
                imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
                exec(compile(ast.Module(body=imports, type_ignores=[]), "<course imports>", "exec"), namespace)
        return namespace

    def start(self) -> Session:
        session = Session(Runner(self.command, env=self.env, cwd=self.cwd),
                          cpu_seconds=self.cell_cpu + HARD_MARGIN,
                          wall_seconds=max(self.cell_wall, self.cell_cpu * 3) + HARD_MARGIN)
        cells = runner_cells(self.source, self.solutions, self.only)
        reply = session.setup({"cells": cells, "answer_keys": answer_keys(self.assignment),
                               "threads": self.threads, "cpu_seconds": self.cell_cpu,
                               "wall_seconds": self.cell_wall, "course_cpu_seconds": COURSE_CELL_CPU_SECONDS},
                              cpu_seconds=len(cells) * self.cell_cpu + COURSE_CELL_CPU_SECONDS + HARD_MARGIN,
                              wall_seconds=len(cells) * (self.cell_wall + 5) + 3 * COURSE_CELL_CPU_SECONDS)
        self.cell_errors = reply["cell_errors"]
        return session

    def run(self) -> Grading:
        if self.master_dir is not None:
            os.environ["MINBERT_ASSIGNMENT_DIR"] = str(self.master_dir)
        started = time.monotonic()
        grading = Grading(notes=list(self.notes), copies=near_copies(self.assignment, self.solutions))
        for cell in self.source["cells"]:
            meta = nbgrader_meta(cell)
            if role(cell) != "tests" or (self.only is not None and meta.get("grade_id") not in self.only):
                continue
            result = TestResult(meta["grade_id"], float(meta.get("points", 0)))
            result.message = self.run_test(source_of(cell))
            result.points = result.max_points if not result.message else 0.0
            grading.tests.append(result)
        for label, error in self.cell_errors.items():
            if label.startswith("your cell"):
                grading.notes.append(f"{label} raised {error}")
        if self.session is not None:
            self.session.runner.close()
        grading.seconds = round(time.monotonic() - started, 1)
        return grading

    def run_test(self, source: str) -> str:
        """'' when the test cell passes, else one line saying why it failed."""
        if self.session is None or self.session.runner.broken:
            try:
                self.session = self.start()
            except RunnerFailed as err:
                self.session = None
                return f"your code could not be loaded: {err}"
        names = loaded_names(source)
        tested = names_under_test(source)
        active = [gid for gid, defined in self.solution_names.items() if defined & tested]
        namespace = dict(self.base)
        for name in sorted(names):
            remote = any(name in defined for defined in self.solution_names.values())
            if remote or (name not in namespace and not hasattr(builtins, name)):
                try:
                    namespace[name] = self.session.name(name)
                except StudentError:
                    pass  # not defined there either: the test's NameError explains it
                except (RunnerFailed, AnswerKeyUsed) as err:
                    return self.explain(err, hidden=False)
        self.session.active = active
        visible, hidden = split_hidden(source)
        for part, is_hidden in ((visible, False), (hidden, True)):
            if not part.strip():
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # a test's "OK" line is for the notebook
                    exec(compile(part, "<test>", "exec"), namespace)
            except BaseException as err:  # noqa: BLE001: any failure of a test is that test's result
                if isinstance(err, KeyboardInterrupt):
                    raise
                return self.explain(err, is_hidden)
            finally:
                self.session.active = []
        return ""

    def explain(self, err: BaseException, hidden: bool) -> str:
        where = "in a hidden test" if hidden else "in the visible test"
        if isinstance(err, AnswerKeyUsed):
            return f"uses the reference implementation {err}: 0 points for this part"
        if isinstance(err, RunnerFailed):
            reason = re.sub(r" \(code -?\d+\)", "", str(err)) if hidden else str(err)  # an exit code can carry data out
            return f"{where}, your code stopped: {reason}"
        if isinstance(err, StudentError):
            if hidden:  # its message may show the hidden inputs, and a class of its own can be named after them
                return f"your code raised {builtin_exception_name(err.type_name)} {where}"
            return f"your code raised {err.type_name}: {err.message}"
        if isinstance(err, NameError):
            name = re.search(r"name '(\w+)'", str(err))
            missing = name.group(1) if name else "a name"
            broken = [f"{label} raised {error}" for label, error in self.cell_errors.items()]
            return (f"{missing} is not defined: define it in its exercise cell"
                    + (f" ({'; '.join(broken)})" if broken else ""))
        message = str(err).split("\n")[0]
        kind = type(err).__name__
        if kind in ("CheckError", "AssertionError"):
            return f"{message}" if not hidden else f"hidden test: {without_hidden_values(message)}"
        return f"{where}: {kind}: {message}"[:500]


def without_hidden_values(message: str) -> str:
    """A hidden test's failure without the numbers its inputs and the reference's outputs would show.

    It keeps what was checked (the text before the first colon, its numbers masked) and a named
    mistake (the kit's own words); any other detail, shapes, positions and values, is left out.
    """
    checked = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?(?!\w)", "#", message.split(": ", 1)[0])
    named = next((text for text in MISTAKES.values() if text in message), None)
    return f"{checked}: {named or 'differs from the reference (a hidden test shows no values)'}"


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("release", type=Path)
    parser.add_argument("submission", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runner-json", type=Path, required=True,
                        help="JSON {command, env, cwd, threads}: how to start the sandboxed runner")
    parser.add_argument("--cell-cpu", type=float, default=CELL_CPU_SECONDS,
                        help=f"CPU seconds a cell or a test's call may take (default {CELL_CPU_SECONDS:g})")
    parser.add_argument("--cell-wall", type=float, default=CELL_WALL_SECONDS,
                        help=f"wall-clock seconds a cell or a test's call may take (default {CELL_WALL_SECONDS:g})")
    args = parser.parse_args(argv)
    runner = json.loads(args.runner_json.read_text(encoding="utf-8"))
    source = nbformat.read(args.source, as_version=4)
    release = nbformat.read(args.release, as_version=4)
    try:
        submitted = nbformat.read(args.submission, as_version=4)
        notes = []
    except Exception as err:  # unreadable: every solution cell is graded as released
        submitted, notes = None, [f"the notebook could not be read ({type(err).__name__}): graded as released"]
    assignment = args.source.stem
    grader = Grader(assignment, source, release, submitted, runner["command"], runner["env"], runner["cwd"],
                    runner.get("threads", 1), master_dir=args.source.parent,
                    cell_cpu=args.cell_cpu, cell_wall=args.cell_wall)
    grading = grader.run()
    grading.notes = notes + grading.notes
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps(grading.as_json(), indent=1), encoding="utf-8")
    os.replace(partial, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
