"""What counts as a secret, and the masked view of a value: the one rule every output uses.

Secrets reach the process in two shapes: fields typed :class:`pydantic.SecretStr` (flagged by
their model) and entries of free-form maps, such as Kafka's ``producer.sasl.plain.password``,
which carry no flag and are recognised by their key. Log lines (plugin traces included),
settings and configuration ``repr``, errors and ``config show`` all go through :func:`masked`
or :func:`masked_entry`, so a value is hidden the same way wherever it would appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

MASK = "******"
"""What a secret that has a value is shown as."""

NOT_SET = "(not set)"
"""What a secret without a value is shown as, so an unset secret is not mistaken for a set one."""

_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "jaas",  # sasl.jaas.config holds the login module's password
    "sharedaccess",  # SharedAccessKey, SharedAccessSignature
    "privatekey",
    "accesskey",
    "apikey",
    "connectionstring",
    "userinfo",  # basic.auth.user.info is user:password
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _words(key: str) -> list[str]:
    """``ssl.keystore.key``, ``ssl-keystore-key`` and ``sslKeystoreKey`` as the same words."""
    return [word.lower() for word in _WORD.findall(key)]


def is_secret_name(key: str) -> bool:
    """Whether a key that has no type to go by (a raw client setting, a log field) names a
    secret: it contains password, secret, token, credential (and a few longer forms such as
    SharedAccessKey or jaas), or its last word is ``key`` (``api.key``, ``ssl.keystore.key``;
    a bare ``key`` or ``key.serializer`` is not a secret)."""
    words = _words(key)
    flat = "".join(words)
    if any(part in flat for part in _SECRET_PARTS):
        return True
    return len(words) > 1 and words[-1] == "key"


def _has_value(value: Any) -> bool:
    return value is not None and value != ""


class _ModelView:
    """A model with its values masked; its ``repr`` reads like the model's own."""

    __slots__ = ("fields", "name")

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.name = name
        self.fields = fields

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self.fields.items())
        return f"{self.name}({inner})"


def masked(value: Any) -> Any:
    """``value`` with every secret in it replaced by :data:`MASK`, safe to print or log.

    ``SecretStr`` values are masked; mappings mask the entries whose key names a secret (see
    :func:`is_secret_name`); models, lists and tuples are masked item by item. Models become a
    view whose ``repr`` reads like the model's. Anything else is returned as it is.
    """
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, BaseModel):
        fields = {name: masked(getattr(value, name)) for name in type(value).model_fields}
        fields.update({k: masked_entry(k, v) for k, v in (value.model_extra or {}).items()})
        return _ModelView(type(value).__name__, fields)
    if isinstance(value, Mapping):
        return {key: masked_entry(key, item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(masked(item) for item in value)
    if isinstance(value, list | set | frozenset):
        return [masked(item) for item in value]
    return value


def masked_entry(key: object, value: Any) -> Any:
    """The masked view of ``value`` found under ``key`` in a mapping or a log line."""
    if isinstance(key, str) and is_secret_name(key) and _has_value(value):
        return MASK
    return masked(value)


def masked_repr(value: Any) -> str:
    """``repr(value)`` with every secret in it masked."""
    return repr(masked(value))


def shown_secret(value: str) -> str:
    """How ``config show`` and errors spell a secret's value: masked, or that it is unset."""
    return MASK if value else NOT_SET


def described_error(exc: BaseException) -> str:
    """An exception as one line that is safe to print or log.

    A pydantic ``ValidationError`` is given by each error's location and message only: its own
    text repeats the input values, which may be secrets (a plugin validating its settings in a
    hook raises one with the whole offending value in it). Anything else is its type and text.
    """
    if isinstance(exc, ValidationError):
        where = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or exc.title}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        return f"ValidationError({exc.title}: {where})"
    return " ".join(f"{type(exc).__name__}: {exc}".split())
