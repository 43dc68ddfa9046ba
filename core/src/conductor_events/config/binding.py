"""Spring's relaxed binding: from property keys to a settings model's fields, and back.

A key under a section is split at dots. Each segment matches a field when both are equal
after dropping ``-`` and ``_`` and lower-casing (so ``batch-size``, ``batchSize`` and
``batch_size`` are one key; kebab-case is canonical). A ``dict[str, str]`` field takes the rest
of the key, as written, as its map key (``producer.linger.ms``); a ``dict[str, Model]`` field
takes one segment as the entry name and binds the rest into that model.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

from conductor_events.config.masking import is_secret_name

Loc = tuple[str, ...]


def normalize(segment: str) -> str:
    """Spring's canonical comparison form of a key segment."""
    return segment.replace("-", "").replace("_", "").lower()


def kebab(field_name: str) -> str:
    return field_name.replace("_", "-")


def env_name(key: str) -> str:
    """Spring's environment variable for a property key: dots to ``_``, dashes dropped, upper."""
    return key.replace(".", "_").replace("-", "").upper()


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` from an annotation."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_class(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


@dataclass(frozen=True)
class FieldShape:
    """How a field binds: a scalar, a nested model, or a map of scalars or models."""

    name: str
    kind: str  # "scalar" | "model" | "map" | "model-map"
    model: type[BaseModel] | None = None
    secret: bool = False


def field_shape(model: type[BaseModel], name: str) -> FieldShape:
    annotation = _unwrap(model.model_fields[name].annotation)
    if get_origin(annotation) is dict:
        value_type = _unwrap(get_args(annotation)[1])
        nested = _model_class(value_type)
        if nested is not None:
            return FieldShape(name, "model-map", nested)
        return FieldShape(name, "map", secret=value_type is SecretStr)
    nested = _model_class(annotation)
    if nested is not None:
        return FieldShape(name, "model", nested)
    return FieldShape(name, "scalar", secret=annotation is SecretStr)


@dataclass(frozen=True)
class Binding:
    """Where one property lands: the model loc, its canonical key suffix, and secrecy."""

    loc: Loc
    canonical: str
    secret: bool


def bind(model: type[BaseModel], segments: list[str]) -> Binding | None:
    """Resolve a key's segments (below the section prefix) against a model; ``None``: unknown."""
    if not segments:
        return None
    by_normal = {normalize(name): name for name in model.model_fields}
    name = by_normal.get(normalize(segments[0]))
    if name is None:
        return None
    shape = field_shape(model, name)
    rest = segments[1:]
    head = kebab(name)
    if shape.kind == "scalar":
        return None if rest else Binding((name,), head, shape.secret)
    if shape.kind == "map":
        if not rest:
            return None
        map_key = ".".join(rest)
        return Binding(
            (name, map_key), f"{head}.{map_key}", shape.secret or is_secret_name(map_key)
        )
    assert shape.model is not None
    if shape.kind == "model":
        inner = bind(shape.model, rest)
        if inner is None:
            return None
        return Binding((name, *inner.loc), f"{head}.{inner.canonical}", inner.secret)
    if len(rest) < 2:
        return None
    inner = bind(shape.model, rest[1:])
    if inner is None:
        return None
    return Binding((name, rest[0], *inner.loc), f"{head}.{rest[0]}.{inner.canonical}", inner.secret)


def known_keys(model: type[BaseModel]) -> Iterator[tuple[str, FieldShape]]:
    """Canonical key suffixes of the fields a key can name directly (maps yield their prefix)."""
    for name in model.model_fields:
        shape = field_shape(model, name)
        if shape.kind == "model" and shape.model is not None:
            for suffix, inner in known_keys(shape.model):
                yield f"{kebab(name)}.{suffix}", inner
        else:
            yield kebab(name), shape


def set_in(data: dict[str, Any], loc: Loc, value: Any) -> None:
    """Set ``value`` at a nested ``loc`` in a dict, creating dicts on the way."""
    for part in loc[:-1]:
        data = data.setdefault(part, {})
    data[loc[-1]] = value
