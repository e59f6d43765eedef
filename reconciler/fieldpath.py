"""Field paths: ``("asset_extra_meta", "tags", 0)`` and their dotted form ``a.tags[0]``.

The loader, the writer, the engine and the renderers all name fields this way; one alias and
one formatter keep their messages identical.
"""

from __future__ import annotations

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """``("tags", 0)`` -> ``tags[0]``; ``("a", "b")`` -> ``a.b``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(dotted: str) -> FieldPath:
    """Inverse of :func:`format_path` for the paths the engine produces."""
    parts: list[str | int] = []
    for chunk in dotted.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    return tuple(parts)
