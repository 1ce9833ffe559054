"""The rule for the docs' code blocks (tests/doc_blocks.py): reading blocks and markers,
finding what breaks the rule, replacing the reader's addresses, reading transcripts."""

from __future__ import annotations

from tests import doc_blocks


def test_the_rule_catches_an_unmarked_block_and_a_marker_without_its_note() -> None:
    unmarked = "Intro.\n\n```\nwebhooksctl list\n```\n"
    assert doc_blocks.problems("docs/x.md", unmarked) == [
        "docs/x.md:3: a block in no language is not run: give it a language the tests run "
        "(bash, console, js, json, python, sh, or ini for a systemd unit) or a marker "
        "<!-- doc-test: skip REASON --> on the line before it"
    ]
    marked = "<!-- doc-test: skip picture -->\n```\na -> b\n```\n"
    assert doc_blocks.problems("docs/x.md", marked) == [
        "docs/x.md: has blocks the tests skip but no note linking to tests/doc_blocks.py"
    ]
    assert doc_blocks.problems("docs/x.md", marked + "See tests/doc_blocks.py.\n") == []
    unknown = "<!-- doc-test: skip later -->\n```bash\nls\n```\ntests/doc_blocks.py\n"
    assert "unknown skip reason 'later'" in doc_blocks.problems("docs/x.md", unknown)[0]


def test_blocks_are_read_with_their_marker_and_indentation() -> None:
    text = (
        "1. Copy:\n\n   <!-- doc-test: skip production -->\n   ```bash\n   a \\\n     b\n"
        "   ```\n\n```console\n$ x\nout\n```\n"
    )
    first, second = doc_blocks.parse("d.md", text)
    assert (first.line, first.language, first.text, first.skip) == (
        4,
        "bash",
        "a \\\n  b\n",
        "production",
    )
    assert (second.language, second.skip) == ("console", None)
    assert doc_blocks.transcript(second.text) == [("x", "out\n")]
    replaced = doc_blocks.substitute(
        "http://127.0.0.1:5000 127.0.0.1:50051",
        {"http://127.0.0.1:5000": "http://127.0.0.1:5000/x", "127.0.0.1:5000": "no"},
    )
    assert replaced == "http://127.0.0.1:5000/x 127.0.0.1:50051"
