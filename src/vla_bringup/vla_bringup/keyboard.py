"""Keys for `vla record`: end an episode early, discard it, quit, start the next one.

While an episode records:
    Enter or space   stop it now and keep it (keep:=success still needs a success)
    d                stop it now and discard it
    q                stop it now, keep it as Enter does, and end the session
Between episodes, with wait_for_key:=true (the person resets the scene meanwhile):
    Enter            record the next episode
    q                end the session

The core is pure: `KeyDecoder` turns what a terminal sends into key names (arrow keys and
other escape sequences are dropped whole, so the `D` of left-arrow `ESC [ D` is no `d`), and
`action_for` maps a key to an `Action` in a `Phase`. `TerminalKeys` reads stdin in a thread
with the terminal in cbreak mode (no echo, no line buffering; Ctrl-C still interrupts) and
restores the terminal when closed. Without a terminal (stdin a pipe or /dev/null, or a
background job) it reads nothing and `reason` says why: the session then runs on time alone.
"""

from __future__ import annotations

import enum
import os
import queue
import select
import sys
import threading
import time
from typing import TextIO

ENTER, SPACE = 'enter', 'space'
ESC = '\x1b'


class Phase(enum.Enum):
    RECORDING = 'recording'
    WAITING = 'waiting'  # between episodes, for the person to reset the scene


class Action(enum.Enum):
    KEEP = 'keep'  # stop the episode now, keep it
    DISCARD = 'discard'  # stop the episode now, discard it
    QUIT = 'quit'  # stop the episode now (kept as with KEEP), then end the session
    START = 'start'  # start the next episode


_ACTIONS = {
    Phase.RECORDING: {
        ENTER: Action.KEEP,
        SPACE: Action.KEEP,
        'd': Action.DISCARD,
        'q': Action.QUIT,
    },
    Phase.WAITING: {ENTER: Action.START, 'q': Action.QUIT},
}

HELP = {
    Phase.RECORDING: 'Enter/space: stop and keep the episode, d: discard it, q: keep it and quit',
    Phase.WAITING: 'Enter: record the next episode, q: quit',
}


def action_for(key: str | None, phase: Phase) -> Action | None:
    """What `key` (a KeyDecoder name) does in `phase`; None: nothing."""
    if key is None:
        return None
    return _ACTIONS[phase].get(key.lower() if len(key) == 1 else key)


def parse_wait_for_key(text: str, sim: bool) -> bool:
    """The `wait_for_key` argument: true/false/1/0, or empty for the default (not in sim)."""
    lowered = text.strip().lower()
    if not lowered:
        return not sim
    if lowered not in ('true', 'false', '1', '0'):
        raise ValueError(f'wait_for_key must be true or false, got {text!r}')
    return lowered in ('true', '1')


class KeyDecoder:
    """Characters from a terminal -> key names: 'enter', 'space' or the character itself.

    An escape sequence (ESC [ ... final byte, ESC O x, ESC x) is dropped; one cut by the end
    of a read is finished in the next. CR LF counts as one Enter.
    """

    def __init__(self) -> None:
        self._escape = ''  # the escape sequence read so far

    def feed(self, text: str) -> list[str]:
        keys: list[str] = []
        previous = ''
        for char in text:
            if self._escape:
                self._escape += char
                if self._escape_done():
                    self._escape = ''
            elif char == ESC:
                self._escape = char
            elif char == '\n' and previous == '\r':
                pass
            elif char in '\r\n':
                keys.append(ENTER)
            elif char == ' ':
                keys.append(SPACE)
            elif char.isprintable():
                keys.append(char)
            previous = char
        return keys

    def _escape_done(self) -> bool:
        sequence = self._escape
        if len(sequence) == 2:
            return sequence[1] not in '[O'  # ESC x (Alt-x): done; ESC [ / ESC O: more follows
        if sequence[1] == 'O':
            return True  # ESC O x (SS3: F1-F4, keypad)
        return '\x40' <= sequence[-1] <= '\x7e'  # CSI: parameters, then a final byte


class NoKeys:
    """No keyboard: `get` only waits. `reason` says why there is none."""

    available = False

    def __init__(self, reason: str = 'none given') -> None:
        self.reason = reason

    def get(self, timeout: float) -> str | None:
        time.sleep(max(0.0, timeout))
        return None

    def drain(self) -> list[str]:
        return []


class TerminalKeys(NoKeys):
    """Keys typed on a terminal stdin; a context manager (or open()/close()).

    open() puts the terminal in cbreak mode and starts the reader thread, or, when stdin is
    not the foreground terminal, sets `reason` and leaves everything as it was. close()
    restores the terminal's settings exactly as they were.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__('')
        self._stream = stream if stream is not None else sys.stdin
        self._keys: queue.Queue[str] = queue.Queue()
        self._decoder = KeyDecoder()
        self._fd = -1
        self._saved: list | None = None  # termios attributes to restore
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self.available = False

    def open(self) -> bool:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # closed, or not a real file
            fd = -1
        if fd < 0 or not os.isatty(fd):
            self.reason = 'stdin is not a terminal'
            return False
        try:
            import termios
        except ImportError:  # not POSIX
            self.reason = 'no termios on this system'
            return False
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():  # changing its settings would stop us
                self.reason = 'running in the background'
                return False
            saved = termios.tcgetattr(fd)
            cbreak = termios.tcgetattr(fd)
            cbreak[3] &= ~(termios.ECHO | termios.ICANON)  # lflags; ISIG stays: Ctrl-C works
            cbreak[6][termios.VMIN], cbreak[6][termios.VTIME] = 1, 0
            termios.tcsetattr(fd, termios.TCSANOW, cbreak)
        except (OSError, termios.error) as exc:
            self.reason = f'cannot set up the terminal: {exc}'
            return False
        self._fd, self._saved = fd, saved
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._read, name='keyboard', daemon=True)
        self._thread.start()
        self.available, self.reason = True, ''
        return True

    def close(self) -> None:
        if self._thread is not None:
            os.write(self._wake[1], b'x')
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            except (OSError, termios.error):
                pass  # the terminal is gone
            self._saved = None
        self.available = False

    def __enter__(self) -> TerminalKeys:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._wake[0]], [], [])
            if self._wake[0] in ready:
                return
            try:
                data = os.read(self._fd, 64)
            except OSError:  # the terminal went away (hangup)
                return
            if not data:
                return
            for key in self._decoder.feed(data.decode('latin-1')):
                self._keys.put(key)

    def get(self, timeout: float) -> str | None:
        """The next key typed, waiting up to `timeout` seconds; None if none."""
        if not self.available:
            return super().get(timeout)
        try:
            return self._keys.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def drain(self) -> list[str]:
        """The keys typed and not yet taken (typed before a prompt: usually to be ignored)."""
        keys = []
        while True:
            try:
                keys.append(self._keys.get_nowait())
            except queue.Empty:
                return keys
