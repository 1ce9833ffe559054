"""`python -m bench --smoke` runs every scenario with tiny counts, so the bench cannot rot
(but those that need MLflow servers: see bench.__main__.SMOKE_SKIPS)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "0. Headline",
    "1. gRPC",
    "2. REST",
    "3. Delivery",
    "4. List scaling",
    "5. Memory",
    "6. Start-up",
    "7. Scale-out",
    "9. Console",
    "11. Filters",
)


def test_bench_smoke(tmp_path):
    out = tmp_path / "benchmarks.md"
    docs = ROOT / "docs" / "benchmarks.md"
    before = docs.read_text() if docs.exists() else None
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    for section in SECTIONS:
        assert f"| {section} |" in text, text
    assert "## Errors" not in text, text
    # The MLflow bridge section is left out of smoke runs, and the report says so.
    assert "| 8. MLflow bridge |" not in text
    assert "- `bridge`: two `mlflow server` processes" in text, text
    assert "- `mlflow`: an `mlflow server` takes" in text, text
    # A smoke run never touches the committed report.
    assert (docs.read_text() if docs.exists() else None) == before
