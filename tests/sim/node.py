"""A simulated server: the real consensus core over a simulated disk and state machine.

The "disk" holds what survives a crash: the epochs, the log and the last installed
snapshot. The state machine is the list of applied entries. Carrying out a Ready follows
its documented order exactly (install, truncate, epochs, append, commit, send), and a
crash loses whatever Ready was not carried out yet.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass, field

from pyzk.zab.history import Append, Entry, Epochs, Install, Ready, Truncate
from pyzk.zab.messages import Message, Snap, State
from pyzk.zab.peer import Durable, Peer, Timing


@dataclass
class Disk:
    accepted_epoch: int = 0
    current_epoch: int = 0
    snap_zxid: int = 0
    snap_state: list[Entry] = field(default_factory=list)
    log: list[Entry] = field(default_factory=list)

    def recover_state(self) -> list[Entry]:
        """What recovery applies: the snapshot, then every logged entry after it."""
        return list(self.snap_state) + [e for e in self.log if e[0] > self.snap_zxid]


class SimNode:
    def __init__(
        self,
        sid: int,
        voters: frozenset[int],
        observers: frozenset[int],
        timing: Timing,
        rng: random.Random,
    ) -> None:
        self.sid = sid
        self.voters = voters
        self.observers = observers
        self.timing = timing
        self.rng = rng
        self.disk = Disk()
        self.peer: Peer | None = None
        self.state: list[Entry] = []
        self.restarts = 0

    @property
    def up(self) -> bool:
        return self.peer is not None

    def start(self, now: int) -> None:
        d = self.disk
        entries = [e for e in d.log if e[0] > d.snap_zxid]
        durable = Durable(d.accepted_epoch, d.current_epoch, d.snap_zxid, entries)
        self.state = d.recover_state()
        self.peer = Peer(
            self.sid,
            self.voters,
            self.observers,
            durable,
            self.timing,
            random.Random(self.rng.random()),
            now,
        )
        self.restarts += 1

    def crash(self) -> None:
        self.peer = None  # everything not on the disk is gone
        self.state = []

    def carry_out(self, ready: Ready) -> list[tuple[int, Message]]:
        """Do what the Ready says, in order; returns the messages to send."""
        d = self.disk
        for op in ready.ops:
            if isinstance(op, Install):
                snap_state: list[Entry] = pickle.loads(op.snap.state)
                d.snap_zxid, d.snap_state, d.log = op.snap.zxid, snap_state, []
                self.state = list(snap_state)
            elif isinstance(op, Truncate):
                if d.snap_zxid > op.zxid:
                    raise AssertionError(f"node {self.sid}: TRUNC below its snapshot")
                d.log = [e for e in d.log if e[0] <= op.zxid]
                self.state = d.recover_state()
            elif isinstance(op, Epochs):
                d.accepted_epoch, d.current_epoch = op.accepted, op.current
            elif isinstance(op, Append):
                for e in op.entries:
                    assert not d.log or e[0] > d.log[-1][0], (self.sid, hex(e[0]))
                    d.log.append(e)
            else:
                for e in op.entries:
                    last = self.state[-1][0] if self.state else 0
                    assert e[0] > last, f"node {self.sid} applies 0x{e[0]:x} after 0x{last:x}"
                    self.state.append(e)
        out = []
        for to, msg in ready.messages:
            if isinstance(msg, Snap):
                # The state as applied now; the learner skips proposals it covers.
                last = self.state[-1][0] if self.state else 0
                msg = Snap(msg.link, last, pickle.dumps(self.state))
            out.append((to, msg))
        return out

    @property
    def serving(self) -> bool:
        return self.peer is not None and self.peer.serving

    @property
    def role(self) -> State:
        return self.peer.state if self.peer is not None else State.LOOKING
