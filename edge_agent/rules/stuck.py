"""A stuck level gauge: equal readings in a row that its own scatter would not give by chance.

A gauge reads to its resolution (a radar to the millimetre) with some scatter: on a slow
surface (a sewer's night flow, a wet well filling slowly) a live gauge repeats a reading now
and then, one time in seven at 1 mm and 2 mm of scatter, so a fixed count of equal readings
is a stuck gauge on one gauge and chance on another. ``stuck`` weighs a run against how often
this gauge repeated a reading lately. ``StuckGauge`` keeps a gauge's run of equal readings
and the latch over it (stuck until the reading changes), shared by a reach's ends
(``sewer._End``) and a wet well (``wet_well.WetWellRule``); each counts the gauge's steps
its own way (a reach's end over its windows, a wet well over its last hour) and hands the
counts in.
"""

from __future__ import annotations

__all__ = ["STUCK_CHANCE", "STUCK_MIN_STEPS", "STUCK_READINGS", "StuckGauge", "stuck"]

# Never fewer equal readings in a row than this (at a gauge whose scatter is well over its
# resolution, no equal steps heard, five).
STUCK_READINGS = 5
# ... and the chance of the run, per reading, under this: the share of the gauge's steps
# before the run that were 0 (a reading equal to the one before) to the power of the run's
# steps. At one in seven, nine readings in a row (once in some years at a reading a minute).
STUCK_CHANCE = 1e-6
# Fewer steps heard before the run than this: the gauge's scatter is not known, five suffice.
STUCK_MIN_STEPS = 20


def stuck(readings: int, steps: int, equal_steps: int) -> bool:
    """``readings`` equal readings in a row, ending now, are more than the gauge gives by
    chance: at least ``STUCK_READINGS``, and the share of its ``steps`` (between successive
    readings over its recent history, the run's own among them) before the run that were 0,
    of ``equal_steps`` in all, to the power of the run's steps, under ``STUCK_CHANCE``. With
    under ``STUCK_MIN_STEPS`` steps heard before the run, ``STUCK_READINGS`` suffice."""
    if readings < STUCK_READINGS:
        return False
    run = readings - 1  # the run's steps, all 0, the latest of ``steps``
    before = steps - run
    if before < STUCK_MIN_STEPS:
        return True
    # (one more of each: no equal step in sixty is not "never")
    return ((equal_steps - run + 1) / (before + 1)) ** run < STUCK_CHANCE


class StuckGauge:
    """One gauge's run of equal readings ending now (``readings``, the latest among them) and
    whether it is a stuck gauge (``stuck``: latched from the reading ``stuck`` first holds
    until one differs). With ``empty_at_zero`` a reading of 0 or less never extends a run:
    an empty pipe reads its invert, 0, over and over, and that is no stuck gauge.

    Per reading: ``moved`` (the latch let go: the caller drops what the stuck run left),
    then ``take``, then (with the steps counted, this one among them) ``judge``."""

    __slots__ = ("empty_at_zero", "last", "readings", "stuck")

    def __init__(self, empty_at_zero: bool = False) -> None:
        self.empty_at_zero = empty_at_zero
        self.last: float | None = None  # the latest reading
        self.readings = 0  # equal readings in a row, ending with ``last``
        self.stuck = False

    def moved(self, value: float) -> bool:
        """``value`` differs from the reading a stuck gauge repeated: the gauge moves again,
        the latch lets go (True). False if it was not stuck or still reads the same."""
        if self.stuck and value != self.last:
            self.stuck = False
            return True
        return False

    def forget(self) -> None:
        """Start afresh (a silence, the clock stepped back): the next reading begins a run."""
        self.last = None
        self.stuck = False

    def take(self, value: float) -> bool:
        """The next reading; True if it extends the run (equal to the one before)."""
        equal = value == self.last and not (self.empty_at_zero and value <= 0)
        self.readings = self.readings + 1 if equal else 1
        self.last = value
        return equal

    def judge(self, steps: int, equal_steps: int) -> bool:
        """Whether the run is now a stuck gauge, given the gauge's recent ``steps`` between
        successive readings (the run's own among them) of which ``equal_steps`` were 0
        (``stuck``); once stuck, stuck while the run lasts."""
        self.stuck = self.readings > 1 and (self.stuck or stuck(self.readings, steps, equal_steps))
        return self.stuck
