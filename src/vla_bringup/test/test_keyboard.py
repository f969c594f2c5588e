"""Keys of `vla record`: the pure core, the terminal reader on a pty, the session's use of them."""

import io
import os
import pty
import select
import sys
import time

import pytest

from vla_bringup.keyboard import ENTER
from vla_bringup.keyboard import SPACE
from vla_bringup.keyboard import Action
from vla_bringup.keyboard import KeyDecoder
from vla_bringup.keyboard import Phase
from vla_bringup.keyboard import TerminalKeys
from vla_bringup.keyboard import action_for
from vla_bringup.keyboard import parse_wait_for_key


def test_keys_map_to_actions_by_phase():
    recording = {k: action_for(k, Phase.RECORDING) for k in (ENTER, SPACE, 'd', 'D', 'q', 'x')}
    assert recording == {
        ENTER: Action.KEEP,
        SPACE: Action.KEEP,
        'd': Action.DISCARD,
        'D': Action.DISCARD,
        'q': Action.QUIT,
        'x': None,
    }
    waiting = {k: action_for(k, Phase.WAITING) for k in (ENTER, SPACE, 'd', 'Q', None)}
    assert waiting == {ENTER: Action.START, SPACE: None, 'd': None, 'Q': Action.QUIT, None: None}


def test_the_decoder_names_keys_and_drops_escape_sequences():
    decoder = KeyDecoder()
    assert decoder.feed('\n') == [ENTER]
    assert decoder.feed('\r') == [ENTER]
    assert decoder.feed('\r\n') == [ENTER], 'CR LF is one Enter'
    assert decoder.feed(' dq') == [SPACE, 'd', 'q']
    # Left arrow (ESC [ D), Ctrl-left (ESC [ 1 ; 5 D), F1 (ESC O P), Alt-d (ESC d): no keys.
    assert decoder.feed('\x1b[D\x1b[1;5D\x1bOP\x1bdx') == ['x']
    assert decoder.feed('\x1b[') == []  # a sequence cut by the end of a read ...
    assert decoder.feed('Dd') == ['d']  # ... ends in the next
    assert decoder.feed('\x07\x7f') == [], 'control characters are no keys'


@pytest.mark.parametrize(
    ('text', 'sim', 'expected'),
    [('', False, True), ('', True, False), ('true', True, True), ('0', False, False)],
)
def test_wait_for_key_defaults_to_real_robots(text, sim, expected):
    assert parse_wait_for_key(text, sim) is expected


def test_wait_for_key_must_be_a_boolean():
    with pytest.raises(ValueError, match='true or false'):
        parse_wait_for_key('yes please', False)


@pytest.mark.parametrize('stream', [io.StringIO(), None])
def test_without_a_terminal_there_are_no_keys(stream):
    read, write = os.pipe()
    with os.fdopen(read) as pipe, TerminalKeys(stream or pipe) as keys:
        assert not keys.available
        assert keys.reason == 'stdin is not a terminal'
        start = time.monotonic()
        assert keys.get(0.1) is None
        assert time.monotonic() - start >= 0.09
    os.close(write)


CHILD = """
import sys, termios
from vla_bringup.keyboard import Phase, TerminalKeys, action_for

def flags():
    lflag = termios.tcgetattr(0)[3]
    return f'echo={bool(lflag & termios.ECHO)} icanon={bool(lflag & termios.ICANON)}'

print('before', flags(), flush=True)
with TerminalKeys() as keys:
    print('ready', keys.available, flags(), flush=True)
    while (key := keys.get(10.0)) not in ('q', None):
        print('key', key, action_for(key, Phase.RECORDING), flush=True)
print('after', flags(), flush=True)
try:
    with TerminalKeys() as keys:
        print('waiting for Ctrl-C', flush=True)
        keys.get(10.0)
except KeyboardInterrupt:
    print('interrupted', flush=True)
print('after', flags(), flush=True)
"""


class ChildTerminal:
    """The master side of the child's pty: what it wrote, read up to a text at a time."""

    def __init__(self, fd):
        self.fd, self.pending = fd, ''

    def until(self, text, timeout=10.0):
        """What the child wrote up to and including `text`; the rest waits for the next call."""
        end = time.monotonic() + timeout
        while text not in self.pending:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, end - time.monotonic()))
            assert ready, f'no {text!r} from the child; it wrote {self.pending!r}'
            try:
                data = os.read(self.fd, 1024)
            except OSError:  # EIO: the child has exited and closed the terminal
                break
            self.pending += data.decode().replace('\r\n', '\n')
        head, found, self.pending = self.pending.partition(text)
        return head + found

    def write(self, data):
        os.write(self.fd, data)


def test_a_terminal_is_read_in_cbreak_mode_and_restored():
    pid, master = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, stdin and stdout
        os.execv(sys.executable, [sys.executable, '-c', CHILD])
    child = ChildTerminal(master)
    try:
        assert 'before echo=True icanon=True' in child.until('ready')
        assert child.until('\n').strip() == 'True echo=False icanon=False'
        child.write(b'd \x1b[Dx\r')
        keys = child.until('key enter Action.KEEP')
        assert keys.split('\n')[:4] == [
            'key d Action.DISCARD',
            'key space Action.KEEP',
            'key x None',
            'key enter Action.KEEP',
        ], 'no echo, no arrow key, no line buffering'
        child.write(b'q')
        assert 'after echo=True icanon=True' in child.until('waiting for Ctrl-C')
        child.write(b'\x03')  # Ctrl-C: still a SIGINT in cbreak mode
        rest = child.until('after') + child.until('\n')
        assert 'interrupted\nafter echo=True icanon=True' in rest
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(master)


# --- the session: fake services and scripted keys --------------------------------------------


class ScriptedKeys:
    """Keys as a person types them: `typed` one per get(); `early` are found by drain()."""

    available = True
    reason = ''

    def __init__(self, typed, early=()):
        self.typed, self.early = list(typed), [list(e) for e in early]

    def get(self, timeout):
        if self.typed:
            return self.typed.pop(0)
        time.sleep(min(timeout, 0.01))
        return None

    def drain(self):
        return self.early.pop(0) if self.early else []


class Ready:
    def __init__(self, states):
        self.states = list(states)

    def service_is_ready(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


@pytest.fixture
def session_factory():
    from vla_bringup.record_node import RecordingSession
    from vla_bringup.record_node import SessionPlan
    from vla_msgs.srv import StartEpisode
    from vla_msgs.srv import StopEpisode

    class FakeRecorder(RecordingSession):
        """The session with the recorder's services answered in-process."""

        def __init__(self, keys, **plan):
            self.lines, self.kept, self.started = [], [], 0
            plan = SessionPlan(**{'episodes': 3, 'episode_s': 20.0, 'sim': False, **plan})
            super().__init__(plan, self.lines.append, keys)

        def call(self, srv_type, name, request, timeout=30.0):
            if srv_type is StartEpisode:
                self.started += 1
                return StartEpisode.Response(success=True, episode_index=self.started - 1)
            assert srv_type is StopEpisode, name
            self.kept.append(request.keep)
            verb = 'saved' if request.keep else 'discarded'
            return StopEpisode.Response(success=True, message=f'{verb} episode')

    sessions = []

    def make(keys, **plan):
        sessions.append(FakeRecorder(keys, **plan))
        return sessions[-1]

    yield make
    for session in sessions:
        session.close()  # idempotent: run() closes too


def test_keys_end_keep_discard_and_quit_episodes(session_factory):
    keys = ScriptedKeys(
        [ENTER, ENTER, 'x', 'd', ENTER, 'd', ENTER, 'q'],  # wait / record, alternately
        early=[[], [], [ENTER, ENTER]],  # a double Enter before the 2nd wait: ignored
    )
    session = session_factory(keys, wait_for_key=True, episodes=5, task='stack')
    start = time.monotonic()
    assert session.run() == 0
    assert time.monotonic() - start < 5.0, 'no episode ran its 20 s'
    assert session.kept == [True, False, True], session.lines
    text = '\n'.join(session.lines)
    assert text.count('press Enter to record episode') == 3
    assert 'episode 1: keep (key)' in text
    assert 'episode 2: discard (key)' in text
    assert 'episode 3: quit (key)' in text
    assert session.lines[-2:] == ['q: ending the session', 'done: 2 of 5 episodes saved']


def test_q_between_episodes_ends_the_session(session_factory):
    keys = ScriptedKeys([ENTER, ENTER], early=[[], [], ['q']])  # q typed while saving
    session = session_factory(keys, wait_for_key=True)
    assert session.run() == 0
    assert session.kept == [True]
    assert session.lines[-1] == 'done: 1 of 3 episodes saved'


def test_without_a_keyboard_the_session_runs_on_time(session_factory):
    keys = TerminalKeys(io.StringIO())
    keys.open()
    session = session_factory(keys, wait_for_key=True, episodes=2, episode_s=0.3)
    start = time.monotonic()
    assert session.run() == 0
    assert 0.6 <= time.monotonic() - start < 3.0
    assert session.kept == [True, True]
    assert session.lines[0] == (
        'no keyboard (stdin is not a terminal): episodes run for episode_s, '
        'not waiting for Enter between them'
    )


def test_waiting_for_a_key_ends_when_the_graph_stops(session_factory):
    session = session_factory(ScriptedKeys([]), wait_for_key=True)
    session._recorder = Ready([False, True, True, False])  # appears, then goes (Ctrl-C)
    assert session.run() == 1
    assert session.lines[-1] == 'error: the recorder has gone (the graph is stopping)'
    assert session.started == 0
