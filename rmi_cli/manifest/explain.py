"""Turn a pydantic validation error into the one line a user needs.

The line names the file and line, the dotted path, what was expected and what was found:
`experiments.yaml:41: experiments.voc-table3b ... loss.radius: expected a number <= 10; found 12`.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "too_short": "more items",
    "too_long": "fewer items",
}


def first_error(error: ValidationError) -> ErrorDetails:
    """The error to report (pydantic lists all; one clear line beats twenty)."""
    errors = error.errors(include_url=False)
    # A misspelt required key fails twice, as missing and as unknown; the unknown key is the
    # one that names what the user wrote, and where.
    return next((err for err in errors if err["type"] == "extra_forbidden"), errors[0])


def describe(err: ErrorDetails, model: type[BaseModel]) -> str:
    """`expected X; found Y`, or the validator's own sentence for cross-field checks."""
    if err["type"] == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return f"expected {expected_phrase(err, model)}; found {found_phrase(err)}"


def expected_phrase(err: ErrorDetails, model: type[BaseModel] | None) -> str:
    """What the field wanted, in words."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"a number {symbol} {ctx[key]}"
    if kind == "missing":
        return "a value (the field is required)"
    if kind == "extra_forbidden":
        known = known_keys(model, err["loc"][:-1]) if model else []
        return f"a known key ({', '.join(known)})" if known else "no extra keys"
    if kind == "literal_error":
        return f"one of {ctx['expected']}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"`name` to be one of {ctx.get('expected_tags', '')}"
    return _TYPES.get(kind, err["msg"][0].lower() + err["msg"][1:])


def found_phrase(err: ErrorDetails) -> str:
    """What the user wrote, or `nothing` for a missing field."""
    if err["type"] == "missing":
        return "nothing"
    if err["type"] == "extra_forbidden":
        return f"{err['loc'][-1]!r}"
    if err["type"] == "union_tag_invalid":
        return repr(err.get("ctx", {}).get("tag"))
    value = err.get("input")
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at `loc` inside `model` (best effort)."""
    _, annotation = _walk(model, loc)
    models = _models_in(annotation) if annotation is not None else []
    return sorted(models[0].model_fields) if len(models) == 1 else []


def strip_union_tags(loc: tuple[Any, ...], model: type[BaseModel]) -> tuple[Any, ...]:
    """Drop the union tags pydantic inserts in locations (`loss.rmi.radius` -> `loss.radius`,
    `crf.CRFStepSpec.iters` -> `crf.iters`)."""
    return _walk(model, loc)[0]


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """Follow `loc` down the annotations; returns (loc without union tags, final annotation)."""
    kept: list[Any] = []
    current: Any = model
    for part in loc:
        alternatives = _unwrap(current) if current is not None else []
        tagged = _tagged(alternatives, part) if len(alternatives) > 1 else None
        if tagged is not None:
            current = tagged
            continue
        kept.append(part)
        current = _field_type(current, part) if current is not None else None
    return tuple(kept), current


def _tagged(alternatives: list[Any], part: Any) -> Any:
    """The alternative a union tag selects: a discriminator value, a model's class name, or a
    generic's repr such as `list[CRFStepSpec]`."""
    for alt in alternatives:
        if _is_model(alt) and part in (alt.__name__, _tag_of(alt)):
            return alt
    if isinstance(part, str) and "[" in part:
        # pydantic names a validated model `function-after[_check(), CRFStepSpec]`
        named = [alt for alt in alternatives if _is_model(alt) and f"{alt.__name__}]" in part]
        if named:
            return named[0]
        head = part.split("[", 1)[0]
        for alt in alternatives:
            if getattr(typing.get_origin(alt), "__name__", None) == head:
                return alt
    return None


def _field_type(current: Any, part: Any) -> Any:
    """The annotation one step below `current` along `part` (a field, a key, an index)."""
    for candidate in _unwrap(current):
        if _is_model(candidate) and isinstance(part, str) and part in candidate.model_fields:
            return candidate.model_fields[part].annotation
        if typing.get_origin(candidate) is dict and isinstance(part, str):
            return typing.get_args(candidate)[1]
        if typing.get_origin(candidate) is list and isinstance(part, int):
            return typing.get_args(candidate)[0]
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation (Annotated and unions flattened)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [alt for arg in typing.get_args(annotation) for alt in _unwrap(arg)]
    return [annotation]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    return [alt for alt in _unwrap(annotation) if _is_model(alt)]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("name")
    return field.default if field is not None else None
