"""Webhook filters: which events of its subscribed types a webhook gets, by the event's data.

A filter has up to three parts, each a list: `names` (glob patterns for the model or prompt
name, the data's `name`), `aliases` (alias names, the data's `alias`) and `tag_keys` (tag
keys, the data's `key`). An event matches when every part that is given and that the event
has a field for holds: its value is one of the list (a glob for `names`). A part says
nothing about events without its field, so one webhook subscribed to model versions and
alias moves can filter the aliases and still get every version of its models. An empty
filter matches everything: a webhook without one behaves as if filters did not exist.

Pure and cheap: the store matches each published event against the stored filters of its
subscribers, parsed once per distinct filter (`parse` is cached)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from mlflow_webhooks.server.errors import InvalidArgument

MAX_ENTRIES = 50  # per part
MAX_LENGTH = 256  # per entry: MLflow's names are at most 256 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# (part, the data field it looks at, what an entry is)
PARTS = (
    ("names", "name", "a glob pattern for the model or prompt name"),
    ("aliases", "alias", "an alias name"),
    ("tag_keys", "key", "a tag key"),
)


@dataclass(frozen=True)
class Filter:
    names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    tag_keys: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.names or self.aliases or self.tag_keys)

    @functools.cached_property
    def _names(self) -> re.Pattern[str]:
        """The name globs as one regular expression (fnmatch's own translation, so the same
        matches as fnmatchcase), compiled once per filter: calling fnmatchcase per pattern
        made matching 1,000 filters several times slower (docs/benchmarks.md, section 11)."""
        return re.compile("|".join(translate(pattern) for pattern in self.names))

    def matches(self, data: dict[str, Any]) -> bool:
        name = data.get("name")
        if self.names and isinstance(name, str) and self._names.match(name) is None:
            return False
        alias = data.get("alias")
        if self.aliases and isinstance(alias, str) and alias not in self.aliases:
            return False
        key = data.get("key")
        return not (self.tag_keys and isinstance(key, str) and key not in self.tag_keys)

    def why_not(self, data: dict[str, Any]) -> str | None:
        """Why an event with `data` does not match, in words; None when it does."""
        for part, field, _ in PARTS:
            value = data.get(field)
            entries: tuple[str, ...] = getattr(self, part)
            if not entries or not isinstance(value, str):
                continue
            if not Filter(**{part: entries}).matches(data):
                listed = ", ".join(entries)
                return f"its {field} {value!r} matches none of the filter's {part} ({listed})"
        return None

    def to_json(self) -> str | None:
        """The stored form; None (no filter) when empty."""
        if self.empty:
            return None
        return json.dumps(
            {part: list(getattr(self, part)) for part, _, _ in PARTS if getattr(self, part)},
            separators=(",", ":"),
        )


NO_FILTER = Filter()


@functools.lru_cache(maxsize=4096)
def parse(stored: str | None) -> Filter:
    """The stored form back; NULL is no filter. Stored filters were validated on the way in."""
    if stored is None:
        return NO_FILTER
    loaded = json.loads(stored)
    return Filter(**{part: tuple(loaded.get(part, ())) for part, _, _ in PARTS})


def validated(names: list[str], aliases: list[str], tag_keys: list[str]) -> Filter:
    """A filter from a caller's lists, or InvalidArgument saying what to fix."""
    given = {"names": names, "aliases": aliases, "tag_keys": tag_keys}
    for part, _, what in PARTS:
        entries = given[part]
        if len(entries) > MAX_ENTRIES:
            raise InvalidArgument(
                f"filter.{part} has {len(entries)} entries; at most {MAX_ENTRIES} are allowed."
            )
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            where = f"filter.{part}[{i}]"
            if not entry.strip():
                raise InvalidArgument(f"{where} is empty; give {what}, or leave the entry out.")
            if entry != entry.strip():
                raise InvalidArgument(
                    f"{where} {entry!r} starts or ends with white space; remove it."
                )
            if len(entry) > MAX_LENGTH:
                raise InvalidArgument(
                    f"{where} is {len(entry)} characters long; at most {MAX_LENGTH} are allowed."
                )
            if _CONTROL.search(entry):
                raise InvalidArgument(f"{where} holds a control character; remove it.")
            if entry in seen:
                raise InvalidArgument(f"{where} {entry!r} is given twice; give each once.")
            seen.add(entry)
            if part == "names":
                _check_glob(where, entry)
    return Filter(tuple(names), tuple(aliases), tuple(tag_keys))


def _check_glob(where: str, pattern: str) -> None:
    """fnmatch takes an unclosed `[` literally, which is rarely what was meant: refused, with
    the way to write a literal bracket. Classes are read as fnmatch reads them: a `!` and
    then a `]` right after the `[` belong to the class."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if pattern[j : j + 1] == "!":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            end = pattern.find("]", j)
            if end == -1:
                raise InvalidArgument(
                    f"{where} {pattern!r} has a '[' that is never closed; close the character "
                    "class with ']', or write a literal '[' as '[[]'."
                )
            i = end
        i += 1
