"""The ``authorized-accounts`` queue policy: one statement of ours, merged into what is there.

Conductor replaced the queue's whole policy with its own statement, dropping whatever grants the
queue's owner had set. Here the plugin owns exactly one statement, found by its ``Sid``: it is
added, or updated in place, and every other statement is kept as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

STATEMENT_ID = "ConductorEventsSendMessage"
DEFAULT_VERSION = "2012-10-17"
MAX_POLICY_BYTES = 20_480
"""SQS's limit on the Policy attribute."""

_ROOT_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")


class PolicyError(ValueError):
    """The queue's existing policy cannot be merged safely (it is left untouched)."""


def account_principal(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def _accounts_of(principal: Any) -> set[str]:
    """Account ids named by a statement's ``Principal`` (ids or root ARNs)."""
    if not isinstance(principal, dict):
        return set()
    values = principal.get("AWS", [])
    values = [values] if isinstance(values, str) else values
    found = set()
    for value in values if isinstance(values, list) else []:
        match = _ROOT_ARN.match(str(value))
        found.add(match.group(1) if match else str(value))
    return found


def our_statement(accounts: Sequence[str], queue_arn: str) -> dict[str, Any]:
    """Allow ``sqs:SendMessage`` on one queue to the given accounts."""
    return {
        "Sid": STATEMENT_ID,
        "Effect": "Allow",
        "Principal": {"AWS": [account_principal(a) for a in sorted(set(accounts))]},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
    }


def _statements(policy: dict[str, Any]) -> list[Any]:
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        return [statements]
    if not isinstance(statements, list):
        raise PolicyError("its Statement is neither a list nor an object")
    return statements


def merge_policy(existing: str | None, accounts: Iterable[str], queue_arn: str) -> str | None:
    """The policy document to set, or ``None`` when ``existing`` already grants exactly this.

    Raises:
        PolicyError: ``existing`` is not a JSON policy object; replacing it would lose grants.
    """
    wanted = sorted(set(accounts))
    policy: dict[str, Any]
    if existing is None or not existing.strip():
        policy = {"Version": DEFAULT_VERSION, "Statement": []}
    else:
        try:
            parsed = json.loads(existing)
        except ValueError as exc:
            raise PolicyError(f"it is not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise PolicyError("it is not a JSON object")
        policy = parsed
    statements = _statements(policy)
    ours = [s for s in statements if isinstance(s, dict) and s.get("Sid") == STATEMENT_ID]
    if len(ours) == 1 and _is_current(ours[0], wanted, queue_arn):
        return None
    others = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == STATEMENT_ID)]
    merged = dict(policy)
    merged.setdefault("Version", DEFAULT_VERSION)
    merged["Statement"] = [*others, our_statement(wanted, queue_arn)]
    document = json.dumps(merged, separators=(",", ":"))
    if len(document.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"the merged policy would be {len(document.encode())} bytes, over SQS's "
            f"{MAX_POLICY_BYTES}-byte limit"
        )
    return document


def _is_current(statement: dict[str, Any], accounts: list[str], queue_arn: str) -> bool:
    action = statement.get("Action")
    actions = {action} if isinstance(action, str) else set(action or [])
    return (
        statement.get("Effect") == "Allow"
        and actions == {"sqs:SendMessage"}
        and statement.get("Resource") == queue_arn
        and _accounts_of(statement.get("Principal")) == set(accounts)
    )
