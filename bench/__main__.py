"""`python -m bench [--smoke] [--only NAME ...] [--out FILE | --merge-into FILE]`.

A full run writes docs/benchmarks.md and docs/benchmarks.png; `--smoke` runs every scenario
with tiny counts (but those in SMOKE_SKIPS) and `--only` runs some, both writing to a
temporary file unless `--out` is given, so docs/ only ever holds complete runs. A full run
of some sections can replace just those sections of a complete report with `--merge-into`,
which says in the report how and when they were measured."""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from bench import (
    bridge,
    console,
    delivery,
    filters,
    listing,
    load,
    machine,
    ordered,
    procs,
    report,
    scale,
    startup,
    unary,
)
from bench.common import Context, Settings, clean_environment
from bench.procs import ROOT

SCENARIOS: dict[str, Callable[[Context], None]] = {
    "pipeline": delivery.pipeline,
    "grpc": unary.grpc_unary,
    "rest": unary.rest_unary,
    "mlflow": unary.rest_vs_mlflow,
    "throughput": delivery.throughput,
    "latency": delivery.latency,
    "fanout": delivery.fanout,
    "backlog": delivery.backlog,
    "list": listing.list_scaling,
    "memory": listing.memory_idle,
    "startup": startup.startup,
    "scale": scale.scale_out,
    "bridge": bridge.bridge,
    "console": console.console_first_page,
    "filters": filters.filter_cost,
    "ordered": ordered.ordered_delivery,
}
DOCS = ROOT / "docs" / "benchmarks.md"
# Scenarios a plain `--smoke` leaves out (`--smoke --only NAME` still runs them), and why.
SMOKE_SKIPS = {
    "bridge": "two `mlflow server` processes take 15-25 s each to start and as long to stop, "
    "more than a smoke run may add to `make test`; `python -m bench --smoke --only bridge` "
    "runs it",
    "mlflow": "an `mlflow server` takes 15-25 s to start; `python -m bench --smoke --only mlflow` "
    "runs it",
}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a second or so each")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run only these (repeatable)"
    )
    parser.add_argument("--out", type=Path, help="the Markdown file to write (PNG beside it)")
    parser.add_argument(
        "--merge-into",
        type=Path,
        metavar="FILE",
        help="with --only, a full run: replace only these sections in this complete report",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; smoke 1)")
    parser.add_argument("--load-procs", type=int, help="processes the unary load is split over")
    parser.add_argument("--workdir", type=Path, help="keep databases and logs here")
    args = parser.parse_args(argv)
    if args.merge_into and (args.smoke or not args.only or args.out):
        parser.error("--merge-into takes --only, and neither --smoke nor --out")
    if args.merge_into and not args.merge_into.exists():
        parser.error(f"--merge-into {args.merge_into}: no such report")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    clean_environment()
    settings = Settings.smoke() if args.smoke else Settings()
    if args.runs:
        settings = replace(settings, runs=args.runs)
    if args.load_procs:
        settings = replace(settings, load_procs=args.load_procs)
    names = args.only or [n for n in SCENARIOS if not (args.smoke and n in SMOKE_SKIPS)]
    out = args.merge_into or args.out
    if out is None:
        out = DOCS if not (args.smoke or args.only) else Path(tempfile.mkdtemp()) / "benchmarks.md"
    mode = "smoke run: tiny counts, not a measurement" if args.smoke else "full run"
    load_before = machine.load_average()
    print(f"bench ({mode}) on {machine.description()}; load {load_before}", flush=True)

    # SIGTERM unwinds like Ctrl-C, so the children are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    failures: list[str] = []
    try:
        ctx = run_scenarios(args, settings, names, failures)
    finally:
        procs.stop_all()
    for name in set(SCENARIOS) - set(names):
        if args.smoke and name in SMOKE_SKIPS:
            ctx.note("Skipped", f"`{name}`: {SMOKE_SKIPS[name]}.")
    if args.merge_into and failures:
        print(f"not merged into {args.merge_into}: {', '.join(failures)} failed", file=sys.stderr)
    elif args.merge_into:
        merge_report(args, ctx, load_before, argv)
    else:
        write_report(args, ctx, out, mode, load_before, argv)
    if failures:
        print(f"scenarios that failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def run_scenarios(
    args: argparse.Namespace, settings: Settings, names: list[str], failures: list[str]
) -> Context:
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as scratch,
        ProcessPoolExecutor(
            max_workers=max(2, settings.load_procs),
            mp_context=multiprocessing.get_context("spawn"),
        ) as pool,
    ):
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        for future in [pool.submit(load.warm) for _ in range(max(2, settings.load_procs))]:
            future.result()
        ctx = Context(settings, pool, workdir)
        for name in names:
            print(f"[{name}]", flush=True)
            started = time.perf_counter()
            try:
                SCENARIOS[name](ctx)
            except Exception:
                failures.append(name)
                traceback.print_exc()
                ctx.note("Errors", f"`{name}` failed: {traceback.format_exc(limit=2)!r}")
            print(f"[{name}] {time.perf_counter() - started:.1f} s", flush=True)
    return ctx


def write_report(
    args: argparse.Namespace,
    ctx: Context,
    out: Path,
    mode: str,
    load_before: str,
    argv: list[str] | None,
) -> None:
    rows = sorted(ctx.rows, key=lambda row: row.section.split(".")[0])
    png = out.with_suffix(".png")
    drawn = report.chart(rows, machine.description(), png)
    if not drawn and not args.smoke:
        print("matplotlib is missing (pip install -e '.[bench]'): no chart", file=sys.stderr)
    command = "make bench" if out == DOCS else "python -m bench " + " ".join(argv or sys.argv[1:])
    notes = {section: ctx.notes[section] for section in sorted(ctx.notes)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        report.markdown(
            rows,
            machine.description(),
            load_before,
            mode,
            notes,
            png.name if drawn else None,
            command,
            machine.revision(),
        )
    )
    print(f"wrote {out}" + (f" and {png}" if drawn else ""), flush=True)


def merge_report(
    args: argparse.Namespace, ctx: Context, load_before: str, argv: list[str] | None
) -> None:
    """Replaces the sections run now in the complete report args.merge_into, and says in
    its header how they were measured; its chart is left as it is."""
    out: Path = args.merge_into
    rows = sorted(ctx.rows, key=lambda row: row.section.split(".")[0])
    notes = {section: ctx.notes[section] for section in sorted(ctx.notes)}
    command = "python -m bench " + " ".join(argv or sys.argv[1:])
    partial = report.markdown(
        rows, machine.description(), load_before, "full run", notes, None, command, ""
    )
    sections = sorted({row.section for row in rows} | set(notes))
    provenance = (
        f"`{command}` (full run) on {machine.description()}; code {machine.revision()}; "
        f"load average before: {load_before}"
    )
    out.write_text(report.merge(out.read_text(), partial, sections, provenance))
    print(f"merged {', '.join(sections)} into {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
