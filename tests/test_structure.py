"""The code's shape: no import cycles, no overlong module, test support kept out of the engine,
and every CLI default equal to the config field it fills."""

from __future__ import annotations

import argparse
import ast
import inspect
from pathlib import Path

import pytest

from bestofn.cli import build_all
from bestofn.config import (
    ExecConfig,
    ORMOptions,
    PRMOptions,
    ReportOptions,
    RerankOptions,
    RunConfig,
    SampleOptions,
    default_of,
)
from bestofn.config.verifier_eval import VerifierEvalOptions
from bestofn.serve import ServeConfig
from retrieval.faiss_index import IndexConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bestofn", "policies", "retrieval")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = p
    return mods


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(mods: dict[str, Path], name: str) -> set[str]:
    """Project modules `name` imports anywhere (functions too), except under TYPE_CHECKING."""
    path = mods[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if _type_checking(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                stem = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{stem}.{base}" if node.module else stem
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        out |= {t for t in targets if t in mods and t != name}
    return out


def import_graph() -> dict[str, set[str]]:
    mods = project_modules()
    return {m: imported(mods, m) for m in mods}


LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "base", ("bestofn.config", "bestofn.console", "bestofn.specs", "bestofn.registry",
                 "bestofn.torch_utils", "bestofn.embedded")),
    (1, "text", ("bestofn.text",)),
    (2, "stopping rules", ("bestofn.adaptive",)),
    (2, "policies", ("policies",)),
    (2, "retrieval", ("retrieval",)),
    (3, "scorers", ("bestofn.scorers",)),
    (4, "evaluation", ("bestofn.evaluation",)),
    (5, "report", ("bestofn.report",)),
    (5, "execution", ("bestofn.execution",)),
    (6, "search", ("bestofn.search",)),
    (7, "jobs", ("bestofn.jobs",)),
    (8, "composition", ("bestofn.run", "bestofn.api", "bestofn")),
    (9, "serve", ("bestofn.serve",)),
    (10, "cli", ("bestofn.cli",)),
    (11, "testing", ("bestofn.testing",)),
]
"""The declared direction of the data flow (docs/architecture.md): a module may import its
own unit and the units of lower layers, never a peer's or a higher layer's."""


def layer_of(module: str) -> tuple[int, str]:
    best = max(((prefix, layer, unit) for layer, unit, prefixes in LAYERS for prefix in prefixes
                if module == prefix or module.startswith(prefix + ".")),
               key=lambda t: len(t[0]), default=None)
    assert best, f"{module} is in no layer of LAYERS: add it to the table"
    return best[1], best[2]


def test_imports_follow_the_declared_layers():
    """Every import (inside functions too) goes down the layers or stays in its unit."""
    bad = []
    for mod, deps in import_graph().items():
        layer, unit = layer_of(mod)
        for dep in deps:
            dep_layer, dep_unit = layer_of(dep)
            if dep_unit != unit and dep_layer >= layer:
                bad.append(f"{mod} ({unit}, layer {layer}) imports {dep} ({dep_unit}, layer "
                           f"{dep_layer})")
    assert not bad, "imports against the declared layers:\n" + "\n".join(sorted(bad))


def test_the_layers_see_imports_inside_functions():
    graph = import_graph()
    assert "bestofn.execution.ray_workers" in graph["bestofn.execution.placement"]  # in a def
    assert {layer_of(m)[1] for m in graph} == {unit for _, unit, _ in LAYERS}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_private_imports_across_packages():
    """`from X import _name` only inside the package that defines `_name`."""
    for mod, p in project_modules().items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                private = [a.name for a in node.names if a.name.startswith("_")
                           and not a.name.startswith("__")]
                assert not private or node.module.split(".")[0] == mod.split(".")[0], (
                    f"{mod} imports private {private} from {node.module}")


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_the_line_limit():
    long = {m: n for m, p in project_modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_engine_does_not_import_test_support():
    users = [m for m, deps in import_graph().items() if not m.startswith("bestofn.testing")
             and any(d.startswith("bestofn.testing") for d in deps)]
    assert users == []


def test_no_test_module_imports_another():
    """Shared test helpers live in `bestofn.testing` (functions) and tests/conftest.py
    (fixtures), never in a test module another one imports."""
    for p in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = node.module or ""
                bad = node.level > 0 or name == "tests" or name.startswith("tests.")
            elif isinstance(node, ast.Import):
                bad = any(a.name == "tests" or a.name.startswith("tests.") for a in node.names)
            else:
                continue
            assert not bad, f"{p.name}:{node.lineno} imports another test module"


def test_configs_import_nothing_from_the_project():
    graph = import_graph()
    config = [m for m in graph if m == "bestofn.config" or m.startswith("bestofn.config.")]
    assert len(config) > 1
    for m in config:
        outside = {d for d in graph[m] if not d.startswith("bestofn.config")}
        assert not outside, f"{m} imports {outside}"



def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest != "help"}


CONFIGS = {"run": (RunConfig, PRMOptions, ExecConfig), "score": (PRMOptions,),
           "prefs": (PRMOptions,), "sample": (SampleOptions, RunConfig),
           "serve": (ServeConfig, RerankOptions, RunConfig, PRMOptions), "report": (ReportOptions,),
           "evaluate": (RunConfig,), "index build": (IndexConfig, RunConfig),
           "index search": (RunConfig,),
           "verifier-eval": (VerifierEvalOptions, PRMOptions)}
"""Each command's flags against these configs: a flag is checked against the first one that
has a field of its name."""
FIELD_OF = {("score", "backend"): (RunConfig, "prm_backend"),
            ("serve", "preset"): (RunConfig, "preset"),
            ("index build", "index"): (IndexConfig, "kind"),
            ("index search", "index"): (None, ""),
            ("evaluate", "round_size"): (None, ""),
            ("run", "round_size"): (None, "")}
"""Flags whose field has another name or lives in another config (ServeConfig holds the
resolved preset; the flag takes `auto` as `run` does)."""


def _field_default(classes: tuple[type, ...], dest: str) -> tuple[bool, object]:
    for cls in classes:
        try:
            return True, default_of(cls, dest)
        except KeyError:
            continue
    return False, None


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_cli_defaults_are_the_config_defaults(command):
    """A flag whose destination names a config field defaults to that field's default (None
    where the value comes from a preset), so no command module restates a default."""
    parser, _ = build_all()
    for word in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    flags = _flags(parser)
    checked = 0
    for dest, action in flags.items():
        cls, name = FIELD_OF.get((command, dest), (None, dest))
        found, want = _field_default((cls,) if cls else CONFIGS[command], name)
        found = found and name != ""  # evaluate --round (replay asks every sample), search
        # --index (the bundled index by default, where a run has none)
        found = found and not action.required
        if found:
            assert action.default == want, f"{command} --{dest}: {action.default!r} != {want!r}"
            checked += 1
    orm = {"orm_max_len": "max_len", "orm_truncation": "truncation", "orm_backend": "backend"}
    for dest, field in orm.items():
        if dest in flags:
            assert flags[dest].default == default_of(ORMOptions, field)
            checked += 1
    assert checked >= 1, f"{command}: no flag matched a config field"


def test_index_build_batch_is_the_embedders_default():
    from retrieval.build import build_index

    parser, _ = build_all()
    for word in ("index", "build"):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    want = inspect.signature(build_index).parameters["batch_size"].default
    assert _flags(parser)["batch_size"].default == want


def test_library_defaults_are_the_config_defaults():
    """`Reranker` and `best_of_n` state no default of their own (serve's flags read the same
    `RerankOptions`)."""
    from bestofn.api import Reranker, best_of_n

    want = {"method": default_of(RerankOptions, "method"),
            "seed": default_of(RerankOptions, "seed"),
            "backend": default_of(RunConfig, "prm_backend"),
            "orm_backend": default_of(RunConfig, "orm_backend")}
    for fn in (Reranker.__init__, best_of_n):
        params = inspect.signature(fn).parameters
        got = {k: params[k].default for k in want if k in params}
        assert got and got == {k: want[k] for k in got}, (fn.__qualname__, got)


def _sources() -> dict[str, str]:
    return {m: p.read_text() for m, p in project_modules().items()}


def test_one_scoring_path():
    """Scorers are called through `batch_scoring.score_requests` only (their own `score`
    convenience aside), and nobody probes a scorer for optional methods."""
    gone = ("score_many", "batches_questions", "score_detailed", "score_with_reasons",
            "CountingScorer", "PromptedPRM.score")
    for mod, text in _sources().items():
        for word in gone:
            assert word not in text, f"{mod} still uses {word}"
        if mod != "bestofn.scorers.batch" and not mod.startswith("bestofn.scorers"):
            assert ".score_batch(" not in text, f"{mod} calls score_batch: use score_requests"


NAMES_METHODS = {"bestofn.evaluation.adaptive_replay", "bestofn.evaluation.adaptive_curves"}
"""Adaptive reports name the few methods a stopping rule reads (not the set of methods)."""


def test_selection_methods_are_listed_in_select_only():
    """No module but `select` spells out a collection of selection-method names."""
    from bestofn.evaluation.select import METHODS

    names = set(METHODS)
    for mod, p in project_modules().items():
        if mod == "bestofn.evaluation.select" or mod in NAMES_METHODS:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
                elts = node.keys if isinstance(node, ast.Dict) else node.elts
                got = {e.value for e in elts if isinstance(e, ast.Constant)} & names
                assert len(got) < 2, f"{mod}:{node.lineno} lists methods {sorted(got)}"
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("startswith"):
                arg = node.args[0] if node.args else None
                assert not (isinstance(arg, ast.Constant) and arg.value in ("orm", "prm")), (
                    f"{mod}:{node.lineno} tells methods apart by name prefix")


def test_one_text_to_solution_and_one_option_parser():
    for mod, text in _sources().items():
        if mod != "bestofn.text.records":
            assert "mark_steps(" not in text or mod == "bestofn.text.steps", (
                f"{mod} marks steps itself: use Solution.from_text")
        if mod != "bestofn.text.option_lines":
            assert "\\(([A-Z])\\)" not in text, f"{mod} parses option lines itself"


def test_random_choices_in_tests_are_seeded():
    """A test's random choices come from a seeded generator (`random.Random(seed)`, or
    `bestofn.testing.seeds.seeded_rng`, which prints its seed), so a failure reproduces."""
    for p in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("random.Random",
                                                                          "Random"):
                assert node.args or node.keywords, f"{p.name}:{node.lineno}: unseeded Random()"


RUN_FILE_READERS = {"bestofn.execution.driver", "bestofn.cli.report", "bestofn.testing.fuzz_inputs"}
"""The driver writes a run's results and failure records; these modules only read them."""


def test_one_run_driver():
    """Resume, results, retries, failure records and progress of a run live in
    `bestofn.execution.driver`: no other module names the results or failures file (but to read it),
    builds a failure record or the run's progress bar, or counts a question's attempts."""
    for mod, p in project_modules().items():
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("results.jsonl",
                                                                  "failures.jsonl"):
                assert mod in RUN_FILE_READERS, f"{mod}:{node.lineno} names {node.value}"
            if mod != "bestofn.execution.driver" and isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in ("Failure", "Progress"), (
                    f"{mod}:{node.lineno} calls {name}: that is the run driver's")
                assert name != "drive" or mod == "bestofn.run", (
                    f"{mod}:{node.lineno} drives a run itself: `bestofn run` is the one caller")
            if isinstance(node, ast.Attribute) and node.attr == "max_attempts":
                assert mod in ("bestofn.run", "bestofn.cli.run", "bestofn.execution.driver"), (
                    f"{mod}:{node.lineno} reads max_attempts: retries are the driver's")


DOCUMENTS_WORDS = ("attach_documents", "CachedSearch", "SearchCache", "question_query",
                   "build_retriever(")
"""What fetching a question's documents takes: only `bestofn.execution.documents` uses them in
`bestofn` (the engine factory defines `build_retriever`; `bestofn index search` queries an
index by text, not questions)."""


def test_one_documents_stage():
    for mod, text in _sources().items():
        if not mod.startswith("bestofn.") or mod == "bestofn.execution.documents":
            continue
        for word in DOCUMENTS_WORDS:
            if (mod, word) == ("bestofn.execution.engines", "build_retriever("):
                continue
            assert word not in text, f"{mod} uses {word}: go through bestofn.execution.documents"


STREAM_MODULES = {"bestofn.execution.vllm_stream", "bestofn.execution.openai_stream",
                  "bestofn.execution.ordered_stream", "bestofn.execution.ray_stream",
                  "bestofn.execution.scheduler", "bestofn.execution.ray_workers"}
"""The streams (and the loop that submits to them, and the Ray actors hosting them): the only
modules that put a request into a policy engine."""
ENGINE_CALLS = ("enqueue", "enqueue_chat", "submit_steps", "stream_submit",
                "stream_submit_steps", "abort_request")


def test_one_engine_loop():
    """One module builds the scheduler loop (`execution.jobs`), and only stream modules
    submit requests to a policy engine: every execution (fixed, adaptive, search; run, serve,
    sample, the library) is jobs on that loop."""
    for mod, p in project_modules().items():
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name.split(".")[-1] == "Scheduler":
                assert mod == "bestofn.execution.jobs", (
                    f"{mod}:{node.lineno} builds a scheduler loop: use execution.jobs")
            if isinstance(node.func, ast.Attribute) and node.func.attr in ENGINE_CALLS:
                assert mod in STREAM_MODULES, (
                    f"{mod}:{node.lineno} calls {name}: only stream modules submit requests")
            if name.endswith("policy.sample") and not mod.startswith("policies."):
                assert mod in STREAM_MODULES, (
                    f"{mod}:{node.lineno} calls {name}: sample through a stream's jobs")
