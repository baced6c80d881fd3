"""HTTP trigger route templates (`items/{id}`, `{name?}`, `{id:int}`, `{*rest}`) as regexes.

The Functions host uses ASP.NET Core route templates: literal segments match case-insensitively,
`{name?}` may be absent, a constraint narrows what a parameter accepts, `{*rest}` takes the rest of
the path, and when several routes match, the most specific (literal before parameter before
optional before catch-all) wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Route", "compile_route"]

_PARAM = re.compile(r"\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[^{}?=]+)*)(\?)?(?:=([^{}]*))?\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    precedence: tuple[int, ...]
    defaults: dict[str, str] = field(default_factory=dict)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        return {**self.defaults, **params}


def _constraint(spec: str) -> str:
    names = [c for c in spec.split(":") if c]
    for name in names:
        base = name.split("(")[0].lower()
        if base in _CONSTRAINTS:
            return _CONSTRAINTS[base]
        if base == "regex":
            return name[len("regex(") : -1]
    return r"[^/]+"


def compile_route(template: str, prefix: str = "api") -> Route:
    """Compile `template` (below `/<prefix>/`) to a matcher over the request path."""
    segments = [s for s in template.strip("/").split("/") if s]
    regex = "^" + (f"/{re.escape(prefix)}" if prefix else "")
    precedence: list[int] = []
    defaults: dict[str, str] = {}
    for segment in segments:
        whole = _PARAM.fullmatch(segment)
        if whole:
            star, name, constraint, optional, default = whole.groups()
            body = r".*" if star else _constraint(constraint or "")
            if default is not None:
                defaults[name] = default
            if star or optional or default is not None:
                regex += f"(?:/(?P<{name}>{body}))?"
                precedence.append(4 if star else 3)
            else:
                regex += f"/(?P<{name}>{body})"
                precedence.append(1 if constraint else 2)
            continue
        parts: list[str] = []
        last = 0
        for inline in _PARAM.finditer(segment):
            parts.append(re.escape(segment[last : inline.start()]))
            parts.append(f"(?P<{inline.group(2)}>{_constraint(inline.group(3) or '')}?)")
            last = inline.end()
        parts.append(re.escape(segment[last:]))
        regex += "/" + "".join(parts)
        precedence.append(0 if last == 0 else 1)
    regex += "/?$"
    return Route(template, re.compile(regex, re.IGNORECASE), tuple(precedence), defaults)


def sort_key(route: Route) -> tuple[Any, ...]:
    """More specific first; among equals, more segments first."""
    return ((*route.precedence, 5), -len(route.precedence))
