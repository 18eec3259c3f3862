"""The `bestofn` command: a thin layer over the library, one module per subcommand.

Each module in `COMMAND_MODULES` has `register(subparsers) -> {name: handler}`; a handler parses
nothing itself: it turns the namespace into the library's config dataclasses (`cli.options`),
calls the library and prints. Add a command by adding a module here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from ..execution.scheduler import EngineFailure
from ..run import ConfigMismatch
from ..scorers.prm_files import StaleProgress
from ..text.files import InputError

Handler = Callable[[argparse.Namespace], int]

COMMAND_MODULES: list[str] = ["score", "evaluate", "run", "sample", "prefs", "index", "report",
                              "serve", "verifier_eval"]
"""Submodules of `bestofn.cli`, in the order `bestofn --help` lists them."""

USER_ERRORS = (InputError, FileNotFoundError, ValueError, KeyError, ImportError, ConfigMismatch,
               StaleProgress)
"""Errors that end a command with one line (exit 2) instead of a traceback."""


def build_all() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    ap = argparse.ArgumentParser(prog="bestofn", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    commands: dict[str, Handler] = {}
    for name in COMMAND_MODULES:
        commands.update(importlib.import_module(f"{__name__}.{name}").register(sub))
    return ap, commands


def main(argv: Sequence[str] | None = None) -> int:
    ap, commands = build_all()
    args = ap.parse_args(argv)
    try:
        return commands[args.command](args)
    except EngineFailure as e:
        print(f"bestofn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except USER_ERRORS as e:
        text = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"bestofn {args.command}: error: {text}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `bestofn` console script (and `python -m bestofn.cli`): main() in a process of its
    own."""
    from ..console import own_process

    own_process()
    sys.exit(main())
