"""Filter policy, in-process: what matches, what each part says nothing about, the verdict in
words, validation's messages, and the stored form."""

from __future__ import annotations

import pytest

from mlflow_webhooks.server import filters
from mlflow_webhooks.server.errors import InvalidArgument
from mlflow_webhooks.server.events import EVENTS

MV = {"name": "fraud-detector", "version": "3", "source": "s", "tags": {}}
ALIAS = {"name": "fraud-detector", "alias": "champion", "version": "3"}
TAG = {"name": "fraud-detector", "version": "3", "key": "owner", "value": "risk"}
BUDGET = {"budget_policy_id": "bp-1", "budget_amount": 1.0}


@pytest.mark.parametrize(
    ("spec", "data", "matches"),
    [
        (filters.NO_FILTER, MV, True),
        (filters.Filter(names=("fraud-*",)), MV, True),
        (filters.Filter(names=("churn", "fraud-det?ctor")), MV, True),
        (filters.Filter(names=("Fraud-*",)), MV, False),  # case-sensitive, as MLflow's names
        (filters.Filter(names=("fraud-[!d]*",)), MV, False),
        (filters.Filter(names=("fraud",)), MV, False),  # a pattern matches the whole name
        (filters.Filter(aliases=("champion",)), ALIAS, True),
        (filters.Filter(aliases=("challenger",)), ALIAS, False),
        (filters.Filter(aliases=("challenger",)), MV, True),  # no alias: says nothing
        (filters.Filter(tag_keys=("owner",)), TAG, True),
        (filters.Filter(tag_keys=("team",)), TAG, False),
        (filters.Filter(tag_keys=("team",)), MV, True),  # a created event's tags: not looked at
        (filters.Filter(names=("fraud-*",), aliases=("champion",)), ALIAS, True),
        (filters.Filter(names=("churn",), aliases=("champion",)), ALIAS, False),  # every part
        (filters.Filter(names=("fraud-*",)), BUDGET, True),  # no name: says nothing
        (filters.Filter(names=("x",)), {"name": 5}, True),  # not a string: no name
    ],
)
def test_matches(spec: filters.Filter, data: dict, matches: bool) -> None:
    assert spec.matches(data) is matches
    assert (spec.why_not(data) is None) is matches


def test_why_not_names_the_part_and_value() -> None:
    spec = filters.Filter(names=("fraud-*",), aliases=("champion", "challenger"))
    assert spec.why_not({**ALIAS, "alias": "staging"}) == (
        "its alias 'staging' matches none of the filter's aliases (champion, challenger)"
    )


def test_every_example_payload_matches_no_filter() -> None:
    for spec in EVENTS.values():
        assert filters.NO_FILTER.matches(spec.example)


def test_stored_form_round_trips_and_empty_is_none() -> None:
    spec = filters.Filter(names=("a*", "b"), tag_keys=("owner",))
    stored = spec.to_json()
    assert stored is not None and filters.parse(stored) == spec
    assert filters.NO_FILTER.to_json() is None and filters.parse(None) == filters.NO_FILTER
    assert filters.Filter(aliases=()).empty


def test_validated_keeps_the_order_given() -> None:
    spec = filters.validated(["b*", "a*"], ["champion"], ["owner", "team"])
    assert spec == filters.Filter(("b*", "a*"), ("champion",), ("owner", "team"))


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (
            {"names": ["a[bc"]},
            "filter.names[0] 'a[bc' has a '[' that is never closed; close the character class "
            "with ']', or write a literal '[' as '[[]'.",
        ),
        ({"names": ["[!]"]}, "filter.names[0] '[!]' has a '[' that is never closed"),
        ({"aliases": [""]}, "filter.aliases[0] is empty; give an alias name"),
        ({"tag_keys": [" owner"]}, "filter.tag_keys[0] ' owner' starts or ends with white space"),
        ({"names": ["a", "a"]}, "filter.names[1] 'a' is given twice; give each once."),
        ({"names": ["a" * 257]}, "filter.names[0] is 257 characters long; at most 256"),
        ({"aliases": ["a\x00"]}, "filter.aliases[0] holds a control character"),
        ({"tag_keys": [str(i) for i in range(51)]}, "filter.tag_keys has 51 entries; at most 50"),
    ],
)
def test_validated_refuses_with_what_to_fix(parts: dict, message: str) -> None:
    given = {"names": [], "aliases": [], "tag_keys": [], **parts}
    with pytest.raises(InvalidArgument) as raised:
        filters.validated(**given)
    assert raised.value.message.startswith(message)


@pytest.mark.parametrize("pattern", ["[[]literal", "[]]x", "[!]]x", "a[0-9]", "*", "?x"])
def test_closed_classes_and_literals_pass(pattern: str) -> None:
    assert filters.validated([pattern], [], []).names == (pattern,)
