"""`name:key=value,...` specs (stopping rules, search strategies) read into typed parameters.

One parser for every registry of dataclasses keyed by name: each parameter is converted to
the type of its field's default, and every error names the bad part of the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

PARSERS = {int: int, float: float, str: str}


def parse_spec(spec: str, registry: Mapping[str, type], kind: str,
               label: str) -> tuple[str, dict[str, object]]:
    """(name, parameters) of `spec`; `kind` names the registry in errors ("stopping rule"),
    `label` prefixes a named entry's errors ("rule 'beta': ...")."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r} in {spec!r}; "
                         f"known: {', '.join(sorted(registry))}")
    defaults = {f.name: f.default for f in fields(registry[name])}
    params: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"{label} {name!r}: expected key=value, got {part!r} in {spec!r}")
        if key not in defaults:
            raise ValueError(f"{label} {name!r}: unknown parameter {key!r}; "
                             f"known: {', '.join(defaults)}")
        want = type(defaults[key])
        try:
            params[key] = PARSERS[want](value.strip())
        except ValueError:
            raise ValueError(f"{label} {name!r}: parameter {key!r} must be "
                             f"{'an integer' if want is int else 'a number'}, "
                             f"got {value.strip()!r}") from None
    return name, params
