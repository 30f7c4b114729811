"""Wall time of each stage of `make test`, kept in a file and printed as a table at the end.

The Makefile wraps each stage's command; the wrapper runs it unchanged, appends one line to the
timings file, and exits with the command's own status, so make stops where it stopped before. A
stage that fails prints the table before make stops (``--report-on-failure``); stages whose
failure the recipe collects itself (the lab's) leave the printing to the recipe's last line.

    python benchmarks/stage_timings.py start FILE
    python benchmarks/stage_timings.py run FILE LABEL [--report-on-failure] [--low-priority] -- COMMAND...
    python benchmarks/stage_timings.py report FILE

The file is tab-separated (stage, seconds, exit status, start time in UTC), one stage per line,
so a run killed halfway still leaves the stages it finished. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A stage's start in the timings file (UTC).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def start(file: Path) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("")


def _record(file: Path, label: str, seconds: float, status: int, began: datetime.datetime) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    # Tabs and newlines in a label would break the line format; labels are ours, but stay safe.
    clean = " ".join(label.split())
    with file.open("a", encoding="utf-8") as out:
        out.write(f"{clean}\t{seconds:.1f}\t{status}\t{began.strftime(TIME_FORMAT)}\n")


# A stage run beside others (make test's offline suites beside the lab) gives way to them for the CPU.
LOW_PRIORITY = 10


def _lower_priority() -> None:
    """In the stage's process, in a session of its own, before it runs the command. Its nice makes it give
    way to the processes it shares a CPU group with. Where the kernel shares CPU time between sessions first
    (autogroups), the session keeps its equal share beside every other (each lab machine is one): lowering
    the session's share too starved the offline suites while all the machines worked at once, and a guide's
    command ran past its 300 s bound during the lab's faults and day two."""
    os.nice(LOW_PRIORITY)


def run(file: Path, label: str, command: list[str], report_on_failure: bool, low_priority: bool = False) -> int:
    began = datetime.datetime.now(datetime.UTC)
    clock = time.monotonic()
    # A low-priority stage is in a session of its own, out of the reach of the terminal's Ctrl-C and of
    # a signal to its runner's group: the runner passes such signals on, from before the stage starts.
    children: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if children:
            os.killpg(children[0].pid, signum)
        else:
            pending.append(signum)

    previous = {signum: signal.signal(signum, forward)
                for signum in ((signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if low_priority else ())}
    try:
        children.append(subprocess.Popen(command, start_new_session=low_priority,
                                         preexec_fn=_lower_priority if low_priority else None))
    except OSError as error:
        for signum, before in previous.items():
            signal.signal(signum, before)
        # As a shell would: say so, and count it as the stage failing with 127.
        print(f"stage {label!r}: cannot run {command[0]!r}: {error.strerror}", file=sys.stderr)
        _record(file, label, time.monotonic() - clock, 127, began)
        if report_on_failure:
            report(file)
        return 127
    child = children[0]
    for signum in pending:
        os.killpg(child.pid, signum)
    # Ctrl-C reaches the whole process group of a stage in the runner's session: let the child handle
    # it, and still record the stage.
    if not low_priority:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        status = child.wait()
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
    # A child killed by a signal reports -N; the shell's convention (128 + N) is what make shows.
    status = 128 - status if status < 0 else status
    _record(file, label, time.monotonic() - clock, status, began)
    if status != 0 and report_on_failure:
        report(file)
    return status


def _rows(file: Path) -> list[tuple[str, float, int, datetime.datetime | None]]:
    rows = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        try:
            began = datetime.datetime.strptime(fields[3], TIME_FORMAT).replace(tzinfo=datetime.UTC)
        except (IndexError, ValueError):
            began = None
        try:
            rows.append((fields[0], float(fields[1]), int(fields[2]), began))
        except ValueError:
            continue
    return rows


def _wall(rows: list[tuple[str, float, int, datetime.datetime | None]]) -> float | None:
    """From the first stage's start to the last one's end: less than the sum when stages ran side by
    side (make test runs the offline suites beside the lab)."""
    if not rows or any(began is None for *_, began in rows):
        return None
    spans = [(began, began + datetime.timedelta(seconds=seconds)) for _, seconds, _, began in rows]
    return (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def report(file: Path) -> None:
    rows = _rows(file)
    width = max([len("stage"), len("first start to last end"), *(len(label) for label, *_ in rows)])
    lines = [f"Stage timings (wall clock), from {file}:", f"  {'stage':<{width}}  {'m:ss':>6}  {'seconds':>8}  result"]
    for label, seconds, status, _ in rows:
        result = "ok" if status == 0 else f"FAILED (exit {status})"
        lines.append(f"  {label:<{width}}  {_duration(seconds):>6}  {seconds:>8.1f}  {result}")
    total = sum(seconds for _, seconds, _, _ in rows)
    lines.append(f"  {'total':<{width}}  {_duration(total):>6}  {total:>8.1f}")
    wall = _wall(rows)
    if wall is not None and wall < total - 1:
        label = "first start to last end"
        lines.append(f"  {label:<{width}}  {_duration(wall):>6}  {wall:>8.1f}  (stages ran side by side)")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="action", required=True)
    commands.add_parser("start", help="empty the timings file").add_argument("file", type=Path)
    runner = commands.add_parser("run", help="run one stage and record its wall time")
    runner.add_argument("file", type=Path)
    runner.add_argument("label")
    runner.add_argument("--report-on-failure", action="store_true",
                        help="print the table when the stage fails (make stops after it)")
    runner.add_argument("--low-priority", action="store_true",
                        help=f"run the stage at nice {LOW_PRIORITY} in a session of its own (signals to the "
                             "runner are passed on), so that stages beside it come first for the CPU")
    commands.add_parser("report", help="print the table").add_argument("file", type=Path)
    argv = sys.argv[1:] if argv is None else argv
    # Everything after the first `--` is the stage's command, untouched by our own options.
    ours, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(ours)
    if args.action == "start":
        start(args.file)
        return 0
    if args.action == "report":
        report(args.file)
        return 0
    if not command:
        parser.error("run: give the stage's command after --")
    return run(args.file, args.label, command, args.report_on_failure, args.low_priority)


if __name__ == "__main__":
    sys.exit(main())
