"""The code blocks of the repository's Markdown files (README.md, docs/*.md, …), and the
rule each of them follows.

The rule: every fenced block is run by tests/test_docs.py, or carries a skip marker on the
line before its fence,

    <!-- doc-test: skip REASON -->

with REASON one of SKIPS (below); a doc with a marker links to this file in a short note
(NOTE), so a reader knows which examples the tests do not run and why. test_docs.py checks
both before it runs anything, so a new block is run or marked, never silently untested.

How a block runs, by its language (RUNNERS):
- `bash`, `sh`: in one shell per doc (`bash -euo pipefail`, in the doc's order, so variables
  carry from block to block), in a scratch clone (test_docs.py's `clone`: links to the
  checkout, so what the docs write lands there). A block that starts the server (`make run`,
  `webhooks-server` without a subcommand: SERVER) is started in the background instead, on
  free ports, and the blocks after it talk to that server.
- `console`: a transcript: each `$ ` line runs in that shell, and what it prints (standard
  output and error) must be the lines shown after it.
- `python`: in one interpreter per doc (one namespace, in order), started with `-P`, so only
  installed packages import, as for a reader outside the clone.
- `js`: written to `example.js` in the clone and run with `node example.js`.
- `json`: parsed; right after a shell block it shows that block's answer, and what the block
  printed must have the same keys (or, for an error, the same `error_code`).
- `ini` whose first line is `# /path/name.service` (or `.socket`, `.timer`): a systemd unit,
  written to the clone and checked with `systemd-analyze verify`, which must print nothing.
  Other config snippets (nginx, env files) are run by no tool here, so they carry a marker.

What the docs take as the reader's own is replaced the same way in every doc, never block by
block (test_docs.py's run_doc): the default addresses (`127.0.0.1:50051`, `127.0.0.1:8080`)
become the test server's, or port 0 in a block that starts a server; `webhooksctl` finds the
server through `WEBHOOKS_ADDRESS`, as it documents; `$WEBHOOK_ID`, `$OTHER_ID` and
`$DELIVERY_ID` are two webhooks and a delivery the test made first; `/var/lib/webhooks` is a
directory of the scratch clone and `/opt/webhooks` the clone itself; the PostgreSQL URL of
docs/operations.md is a fresh schema on the test PostgreSQL (tests/databases.py), and in
docs/mlflow.md `http://127.0.0.1:5000` is the session's MLflow server running the bridge
(tests/mlflow_env.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from tests.support import ROOT

# The reasons a block may go unrun, each with what covers it instead.
SKIPS = {
    "picture": "a diagram or a command's synopsis: nothing to run",
    "output": "what a command prints, with made-up ids and times; the tests of that "
    "command check its form",
    "production": "needs what only a real deployment has (a PostgreSQL server and a key of "
    "your own, systemd, a reverse proxy, a real TLS certificate, hosts of your network)",
    "installs": "installs from a package registry; the test suite installs the same way once "
    "(make, tests/test_node_client.py)",
    "the-suite": "runs the test suite, or part of it, which runs anyway",
    "mlflow-server": "starts the MLflow set-up, which the session's fixtures run on free ports "
    "(tests/mlflow_env.py); the blocks after it run against those servers",
}
RUNNERS = {"bash", "sh", "console", "python", "js", "json"}
SHELLS = {"bash", "sh"}
# The link every doc with a skip marker has, in a note saying what is not run and why.
NOTE = "tests/doc_blocks.py"

# A systemd unit names its installed path on its first line.
UNIT = re.compile(r"\A# (?P<path>/\S+\.(?:service|socket|timer))\n")
FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
MARKER = re.compile(r"^<!-- doc-test: skip (?P<reason>[\w-]+) -->$")
# `make run`, or webhooks-server without a subcommand: the block starts a server.
SERVER = re.compile(r"(?:^|[\s/])(?:make run|webhooks-server(?! (?:backup|copy-database)\b))\b")


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the clone's root
    line: int  # of the opening fence, 1-based
    language: str
    text: str  # without the fence's indentation
    skip: str | None  # the marker's reason

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def unit_path(self) -> str | None:
        found = UNIT.match(self.text) if self.language == "ini" else None
        return found["path"] if found else None

    @property
    def runnable(self) -> bool:
        return self.language in RUNNERS or self.unit_path is not None

    @property
    def starts_server(self) -> bool:
        return self.language in SHELLS and bool(SERVER.search(self.text))


def docs() -> list[str]:
    """Every Markdown file in the repository."""
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def parse(doc: str, text: str) -> list[Block]:
    """Every fenced block of `text`, with the skip marker of the line before it, if any."""
    blocks: list[Block] = []
    lines = text.splitlines()
    at = 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        if not opening:
            at += 1
            continue
        indent = len(opening["indent"])
        end = next((i for i in range(at + 1, len(lines)) if lines[i].strip() == "```"), len(lines))
        assert end < len(lines), f"{doc}:{at + 1}: the block is never closed"
        body = "".join(line[indent:] + "\n" for line in lines[at + 1 : end])
        before = next((lines[i].strip() for i in range(at - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(before)
        blocks.append(
            Block(doc, at + 1, opening["language"], body, marker["reason"] if marker else None)
        )
        at = end + 1
    return blocks


def blocks(doc: str) -> list[Block]:
    return parse(doc, (ROOT / doc).read_text())


def problems(doc: str, text: str) -> list[str]:
    """What breaks the rule in a doc: a block neither runnable nor marked, an unknown reason,
    a marker without the note."""
    found = []
    parsed = parse(doc, text)
    for block in parsed:
        if block.skip is None and not block.runnable:
            language = block.language or "no language"
            found.append(
                f"{block.where}: a block in {language} is not run: give it a language the "
                f"tests run ({', '.join(sorted(RUNNERS))}, or ini for a systemd unit) or a "
                "marker <!-- doc-test: skip REASON --> on the line before it"
            )
        elif block.skip is not None and block.skip not in SKIPS:
            found.append(
                f"{block.where}: unknown skip reason {block.skip!r}: use one of "
                f"{', '.join(SKIPS)} (tests/doc_blocks.py)"
            )
    if any(b.skip for b in parsed) and NOTE not in text:
        found.append(f"{doc}: has blocks the tests skip but no note linking to {NOTE}")
    return found


def substitute(text: str, replacements: dict[str, str]) -> str:
    """Each key of `replacements` replaced by its value in one pass, longest first (so a URL
    is replaced whole before an address inside it)."""
    if not replacements:
        return text
    pattern = "|".join(re.escape(old) for old in sorted(replacements, key=len, reverse=True))
    return re.sub(pattern, lambda found: replacements[found[0]], text)


def transcript(text: str) -> list[tuple[str, str]]:
    """A console block's commands (`$ ` lines) with the output shown after each."""
    steps: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("$ "):
            steps.append((line[2:].rstrip("\n"), ""))
        else:
            assert steps, f"a console block starts with output, not a `$ ` line: {line!r}"
            steps[-1] = (steps[-1][0], steps[-1][1] + line)
    return steps
