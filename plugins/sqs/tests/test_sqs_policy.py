"""``authorized-accounts``: the policy statement, merged into existing policies, as IAM
accepts it (checked with parliament, an IAM policy linter that knows SQS's actions and ARNs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import parliament  # type: ignore[import-untyped]
import pytest
from conductor_events_sqs.policy import (
    MAX_POLICY_BYTES,
    STATEMENT_ID,
    PolicyError,
    merge_policy,
)

from conductor_events.backend import SubscribeOptions
from conductor_events.messages import Message

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

OPTIONS = SubscribeOptions(drain_timeout=0.5)

ARN = "arn:aws:sqs:us-east-1:123456789012:orders"
OWNER_STATEMENT = {
    "Sid": "OwnerSnsFanIn",
    "Effect": "Allow",
    "Principal": {"Service": "sns.amazonaws.com"},
    "Action": "sqs:SendMessage",
    "Resource": ARN,
    "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}},
}


def findings(document: str) -> list[tuple[str, Any]]:
    policy = parliament.analyze_policy_string(
        document, ignore_private_auditors=True, include_community_auditors=False
    )
    return [(f.issue, f.detail) for f in policy.findings]


def statements(document: str) -> list[dict[str, Any]]:
    parsed = json.loads(document)
    result: list[dict[str, Any]] = parsed["Statement"]
    return result


def test_a_new_policy_allows_send_message_to_the_accounts() -> None:
    document = merge_policy(None, ["444455556666", "111122223333"], ARN)
    assert document is not None
    parsed = json.loads(document)
    assert parsed["Version"] == "2012-10-17"
    assert parsed["Statement"] == [
        {
            "Sid": STATEMENT_ID,
            "Effect": "Allow",
            "Principal": {
                "AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"]
            },
            "Action": "sqs:SendMessage",
            "Resource": ARN,
        }
    ]
    assert findings(document) == []


def test_the_linter_would_catch_a_wrong_document() -> None:
    """The check above means something: a misspelt action or a bad principal is flagged."""
    bad = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["1234"]},
                    "Action": "sqs:SendMesage",
                    "Resource": ARN,
                }
            ],
        }
    )
    issues = {issue for issue, _ in findings(bad)}
    assert {"UNKNOWN_ACTION", "UNKNOWN_PRINCIPAL"} <= issues


def test_existing_statements_are_kept() -> None:
    existing = json.dumps({"Version": "2008-10-17", "Id": "owner", "Statement": [OWNER_STATEMENT]})
    document = merge_policy(existing, ["111122223333"], ARN)
    assert document is not None
    parsed = json.loads(document)
    assert parsed["Version"] == "2008-10-17"
    assert parsed["Id"] == "owner"
    assert parsed["Statement"][0] == OWNER_STATEMENT
    assert parsed["Statement"][1]["Sid"] == STATEMENT_ID
    # the owner's version is kept (upgrading could change what their statements mean)
    assert findings(document) == [("OLD_VERSION", "")]


def test_our_statement_is_updated_in_place_and_unchanged_is_a_no_op() -> None:
    first = merge_policy(None, ["111122223333"], ARN)
    assert first is not None
    assert merge_policy(first, ["111122223333"], ARN) is None
    # SQS may hand principals back as bare ids: still the same grant
    bare = first.replace("arn:aws:iam::111122223333:root", "111122223333")
    assert merge_policy(bare, ["111122223333"], ARN) is None
    second = merge_policy(first, ["111122223333", "444455556666"], ARN)
    assert second is not None
    (ours,) = statements(second)
    assert ours["Principal"]["AWS"] == [
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::444455556666:root",
    ]


def test_a_single_statement_object_is_kept() -> None:
    existing = json.dumps({"Version": "2012-10-17", "Statement": OWNER_STATEMENT})
    document = merge_policy(existing, ["111122223333"], ARN)
    assert document is not None
    assert [s["Sid"] for s in statements(document)] == ["OwnerSnsFanIn", STATEMENT_ID]


@pytest.mark.parametrize("existing", ["{not json", "[1, 2]", '{"Statement": 5}'])
def test_a_policy_that_cannot_be_merged_is_not_replaced(existing: str) -> None:
    with pytest.raises(PolicyError):
        merge_policy(existing, ["111122223333"], ARN)


def test_a_merge_over_the_size_limit_is_refused() -> None:
    owner: list[dict[str, Any]] = []
    while len(json.dumps({"Statement": owner}, separators=(",", ":"))) < MAX_POLICY_BYTES - 100:
        owner.append({**OWNER_STATEMENT, "Sid": f"Owner{len(owner)}"})
    with pytest.raises(PolicyError, match="20480-byte limit"):
        merge_policy(json.dumps({"Statement": owner}), ["111122223333"], ARN)
    assert merge_policy(json.dumps({"Statement": owner[:-3]}), ["111122223333"], ARN)


async def test_the_plugin_merges_into_the_queues_policy(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    url = raw.create_queue(QueueName=qname)["QueueUrl"]
    arn = raw.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    owner = {**OWNER_STATEMENT, "Resource": arn}
    raw.set_queue_attributes(
        QueueUrl=url,
        Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [owner]})},
    )
    client = make_client(authorized_accounts="111122223333,444455556666")
    assert (await client.publish(qname, [Message(1)])).ok
    stored = raw.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"][
        "Policy"
    ]
    kept, ours = statements(stored)
    assert kept == owner
    assert ours["Sid"] == STATEMENT_ID
    assert ours["Resource"] == arn
    assert findings(stored) == []
    assert client.requests.by_operation["set_queue_attributes"] == 1

    again = make_client(authorized_accounts="444455556666,111122223333")
    async with await again.subscribe(qname, OPTIONS):
        pass
    assert again.requests.by_operation["set_queue_attributes"] == 0  # already granted
