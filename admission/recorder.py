"""Where the webhook's decisions go: one JSON line each on stderr, and with a decision log,
a durable, hash-chained record written by a recorder process.

The recorder is a child process (`python -m admission.recorder LOG`) so that chaining,
writing and fsyncing take nothing from the event loop that answers the API server. The
server sends it records as JSON lines on its stdin; it appends what has arrived, fsyncs once
for all of it, and acknowledges the count on its stdout:

    <n>\\n            the next n records are on disk
    !<n> <why>\\n     the next n records could not be written (each of their decisions fails)

A decision is answered only once its record is acknowledged. Should the recorder die, every
waiting and later decision fails (denied: fail closed) and the server reports itself unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any, cast

import msgspec

from mlbom.errors import BadInputError

log = logging.getLogger("mlbom.admission")
STDERR_FLUSH_SECONDS = 0.05  # decision lines on stderr are written in batches
START_SECONDS = 10.0
READ_BYTES = 1 << 20


class RecordingError(RuntimeError):
    """A decision could not be made durable."""


class Recorder:
    """Records decisions: `record` prints a line on stderr and, when `durable` and a log is
    configured, returns once the record is on disk."""

    def __init__(self, log_path: Path | None) -> None:
        self.log_path = log_path
        self._lines: list[bytes] = []  # for stderr, flushed every STDERR_FLUSH_SECONDS
        self._outgoing: list[bytes] = []  # for the recorder process, sent once per loop turn
        self._waiting: deque[asyncio.Future[None]] = deque()  # acknowledged in order
        self._process: asyncio.SubprocessTransport | None = None
        self._ready: asyncio.Future[str] | None = None
        self._exit: asyncio.Future[None] | None = None
        self._gone: str | None = None
        self._acks = b""

    @property
    def healthy(self) -> bool:
        return self._gone is None

    async def start(self) -> None:
        """Start the recorder process (with a log): the log must open, or this raises."""
        if self.log_path is None:
            return
        loop = asyncio.get_running_loop()
        self._ready, self._exit = loop.create_future(), loop.create_future()
        self._process, _ = await loop.subprocess_exec(
            lambda: _Pipes(self), sys.executable, "-m", "admission.recorder", str(self.log_path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
        )  # fmt: skip
        try:
            problem = await asyncio.wait_for(asyncio.shield(self._ready), START_SECONDS)
        except TimeoutError:
            problem = f"the decision recorder did not start within {START_SECONDS:g} s"
        if problem:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            raise BadInputError(problem)

    async def record(self, record: dict[str, Any] | bytes, *, durable: bool) -> None:
        """Print the record and, when `durable`, return once it is on disk. `record` is a
        dict, or one already encoded as a JSON object."""
        line = record if isinstance(record, bytes) else msgspec.json.encode(record)
        self._lines.append(b'{"event":"decision",' + line[1:] + b"\n")
        loop = asyncio.get_running_loop()
        if len(self._lines) == 1:
            loop.call_later(STDERR_FLUSH_SECONDS, self.flush_lines)
        if not durable or self._process is None:
            return
        if self._gone is not None:
            raise RecordingError(self._gone)
        self._outgoing.append(line + b"\n")
        if len(self._outgoing) == 1:
            loop.call_soon(self._send)
        waiter = loop.create_future()
        self._waiting.append(waiter)
        await waiter

    def flush_lines(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            sys.stderr.buffer.write(b"".join(lines))
            sys.stderr.flush()

    async def close(self) -> None:
        """Let the recorder write what it has, then stop it."""
        self.flush_lines()
        if self._process is None:
            return
        self._send()
        self._gone = self._gone or "the webhook is shutting down"
        pipe = self._process.get_pipe_transport(0)
        if pipe is not None:
            pipe.close()  # end of input: the recorder finishes and exits
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), START_SECONDS)  # type: ignore[arg-type]
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        self._process.close()
        self._fail(self._gone)

    def _send(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        pipe = self._process.get_pipe_transport(0) if self._process else None
        if outgoing and pipe is not None and not pipe.is_closing():
            cast(asyncio.WriteTransport, pipe).write(b"".join(outgoing))

    def _received(self, data: bytes) -> None:
        *lines, self._acks = (self._acks + data).split(b"\n")
        for line in lines:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result("" if line == b"ready" else line.decode(errors="replace"))
                continue
            count, _, why = line.lstrip(b"!").partition(b" ")
            error = None
            if line.startswith(b"!"):
                error = RecordingError(f"the decision log could not be written: {why.decode(errors='replace')}")  # fmt: skip
            for _ in range(int(count) if count.isdigit() else 0):
                waiter = self._waiting.popleft() if self._waiting else None
                if waiter is None or waiter.done():  # its request was cancelled
                    continue
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _exited(self) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(None)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result("the decision recorder exited at start")
        elif self._gone is None:
            log.error("the decision recorder exited; decisions are denied until the webhook restarts")  # fmt: skip
        self._fail("the decision recorder is not running")

    def _fail(self, why: str) -> None:
        self._gone = self._gone or why
        error = RecordingError(self._gone)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.recorder._received(data)

    def process_exited(self) -> None:
        self.recorder._exited()


def main(path: str) -> int:
    """The recorder process: records from stdin, acknowledgements on stdout. It runs until
    its input ends (the server closed it, or died): a signal to the process group, such as
    Ctrl-C, must not drop records the server is still waiting for."""
    from admission.decisions import DecisionLog

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)

    def say(line: bytes) -> None:
        os.write(1, line + b"\n")

    try:
        decisions = DecisionLog(Path(path))
    except BadInputError as e:
        say(str(e).encode())
        return 2
    say(b"ready")
    pending = b""
    while chunk := os.read(0, READ_BYTES):
        *lines, pending = (pending + chunk).split(b"\n")
        if not lines:
            continue
        try:
            for line in lines:
                decisions.write(msgspec.json.decode(line))
            decisions.sync()
        except OSError as e:  # the disk is full or gone: these decisions fail, later ones retry
            say(b"!%d %s" % (len(lines), (e.strerror or str(e)).encode()))
        else:
            say(b"%d" % len(lines))
    decisions.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
