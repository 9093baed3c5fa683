"""How the client shows an action: colour and a live status line on a terminal, plain lines otherwise.

On a terminal (``rich`` decides, honouring ``NO_COLOR``, ``FORCE_COLOR`` and ``TTY_COMPATIBLE``) each
change is a coloured row and a spinner line below says what the action is doing and for how long,
redrawn in place. Piped, every change is one plain line that scripts, the demo and CI read with
:func:`parse_line`::

    [3f2a1b9c 12:00:03] job created: training job 3f2a1b9c-... (SUCCEEDED)

A change whose message goes on below its first line (a FAILED job's last log lines) is followed by
those lines, indented, which :func:`parse_line` does not take for changes. Notes (hints, what
SageMaker says) go to stderr, so stdout holds the action id and its changes only.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from rich.console import Console
from rich.status import Status as Spinner
from rich.table import Table
from rich.text import Text

from sagemaker_executor.client.timeline import Change, Tone

_INDENT = "    "  # the lines below a change's own (a failed job's log): never read as a change
_HOST_COLOURS = ("red", "green", "yellow", "blue", "magenta", "cyan")  # as the SDK's ColorWrap
_STYLES = {Tone.INFO: "cyan", Tone.GOOD: "bold green", Tone.WARN: "bold yellow", Tone.BAD: "bold red"}
_LINE = re.compile(
    r"^\[(?P<id>\S+) (?P<time>[^\]]+)\] (?P<event>[^:]+): (?P<detail>.*) \((?P<status>[^()]*)\)$"
)


@dataclass(frozen=True)
class Line:
    """A change as printed on a plain line."""

    action: str
    time: str
    event: str
    detail: str
    status: str


def parse_line(text: str) -> Line | None:
    """The change a plain output line shows, or None for any other line (the action id, a note)."""
    match = _LINE.match(text.rstrip("\n"))
    return Line(*match.group("id", "time", "event", "detail", "status")) if match else None


def _clock(time_ms: int | None) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000) if time_ms is not None else datetime.now()
    today = moment.date() == datetime.now().date()
    return moment.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S")


class View:
    """Prints an action's id, its changes and notes; ``out``/``err`` are for tests (default: stdio)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *, terminal: bool | None = None):
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        self._console = Console(file=self._out, force_terminal=terminal, highlight=False)
        self._err_console = Console(file=self._err, force_terminal=terminal, highlight=False)
        self.live = self._console.is_terminal
        self._spinner: Spinner | None = None
        self._since = time.monotonic()
        self._doing = ""

    def action(self, action_id: str, what: str = "action") -> None:
        """The id of the action the changes are about: alone on the first line when piped."""
        if self.live:
            self._console.print(Text.assemble((f"{what} ", "dim"), (action_id, "bold")))
        else:
            print(action_id, file=self._out, flush=True)

    def change(self, change: Change) -> None:
        clock = _clock(change.time_ms)
        self._doing, self._since = change.event, time.monotonic()
        if not self.live:
            print(
                f"[{change.action_id[:8]} {clock}] {change.event}: {change.detail} ({change.status})",
                file=self._out,
                flush=True,
            )
            for line in change.lines:
                print(f"{_INDENT}{line}", file=self._out, flush=True)
            return
        row = Table.grid(padding=(0, 2))
        row.add_column(no_wrap=True, style="dim")
        row.add_column(no_wrap=True, min_width=18)
        row.add_column(ratio=1)
        row.add_row(
            clock,
            Text(change.event, style=_STYLES[change.tone]),
            Text.assemble(change.detail, (f"  {change.status}", "dim")),
        )
        self._console.print(row)
        for line in change.lines:
            self._console.print(Text(f"{_INDENT}{line}", style="dim"), soft_wrap=True)
        self._refresh()

    def note(self, text: str) -> None:
        """A hint or an aside, on stderr (above the status line while it runs: one screen, one console)."""
        if self.live:
            console = self._console if self._spinner is not None else self._err_console
            console.print(Text(text, style="dim"))
        else:
            print(text, file=self._err, flush=True)

    def log_line(self, text: str, host: str | None = None) -> None:
        """A line of a job's log (``logs``), on stdout; ``host`` prefixes it when the job has several,
        coloured per host on a terminal."""
        if not self.live:
            print(f"[{host}] {text}" if host else text, file=self._out, flush=True)
            return
        shown = Text(text)
        if host:
            colour = _HOST_COLOURS[sum(map(ord, host)) % len(_HOST_COLOURS)]
            shown = Text.assemble((f"[{host}] ", colour), text)
        self._console.print(shown, soft_wrap=True)

    def line(self, text: str) -> None:
        """A line of a summary (``status``), on stdout."""
        if self.live:
            self._console.print(Text(text))
        else:
            print(text, file=self._out, flush=True)

    # --- the live status line (terminal only) --------------------------------------------------------

    def start_waiting(self, doing: str) -> None:
        self._doing, self._since = doing, time.monotonic()
        if self.live and self._spinner is None:
            self._spinner = self._console.status(self._waiting_text())
            self._spinner.start()

    def tick(self) -> None:
        """Redraw the status line (its elapsed time); call it between polls."""
        self._refresh()

    def stop_waiting(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    def _refresh(self) -> None:
        if self._spinner is not None:
            self._spinner.update(self._waiting_text())

    def _waiting_text(self) -> Text:
        seconds = int(time.monotonic() - self._since)
        minutes, secs = divmod(seconds, 60)
        return Text.assemble((self._doing or "waiting", "bold"), (f"  {minutes}m{secs:02d}s", "dim"))
