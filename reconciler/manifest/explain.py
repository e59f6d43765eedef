"""Turning pydantic's validation errors into messages a manifest author can act on.

Each message says what is allowed and what was found (``(got 'x')``), unknown fields suggest the
closest allowed name, and a number where a string belongs says to quote it.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from reconciler.fieldpath import FieldPath
from reconciler.manifest.schema import Manifest


def explain(error: ErrorDetails) -> tuple[FieldPath, str]:
    """The data path of an error and a message saying what is allowed."""
    loc: FieldPath = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return loc, f"invalid key: {_strip_input(error['msg'])} (got {_show(value)})"
    if "at" in ctx:  # a whole-spec rule that knows which field it is about
        loc = (*loc, *ctx["at"])
    if kind == "extra_forbidden":
        return loc, _unknown_field(loc)
    if kind == "missing":
        return loc, "required field is missing"
    if kind in ("too_long", "too_short"):
        bound = "at most" if kind == "too_long" else "at least"
        limit = ctx.get("max_length" if kind == "too_long" else "min_length")
        items = "item" if limit == 1 else "items"
        return loc, f"List should have {bound} {limit} {items} (got {ctx.get('actual_length')})"
    if kind in ("string_too_long", "string_too_short"):
        return (
            loc,
            f"{_strip_input(error['msg'])} (got {len(value) if isinstance(value, str) else '?'})",
        )
    if kind == "literal_error":
        return loc, f"{error['msg']} (got {_show(value)})"
    if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing"):
        hint = ""
        if kind == "string_type" and isinstance(value, (int, float, bool)):
            hint = "; quote it to make it a string"
        return loc, f"{error['msg']} (got {_show(value)}{hint})"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        return loc, f"{error['msg']} (got {_show(value)})"
    return loc, _strip_input(error["msg"])


def _strip_input(message: str) -> str:
    return message.replace(" after validation", "").removeprefix("Value error, ")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return _show(value)


def _unknown_field(loc: FieldPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    allowed = list(model.model_fields) if model is not None else []
    message = f"unknown field {key!r}"
    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if matches:
        return f"{message}; did you mean {matches[0]!r}?"
    if allowed:
        return f"{message}; allowed: {', '.join(allowed)}"
    return message


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` from an annotation."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: FieldPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` inside a manifest."""
    tp: Any = Manifest
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (list, dict):
            tp = get_args(tp)[-1]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            info = tp.model_fields.get(part)
            if info is None:
                return None
            tp = info.annotation
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
