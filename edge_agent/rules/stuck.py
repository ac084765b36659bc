"""A stuck level gauge: equal readings in a row that its own scatter would not give by chance.

A gauge reads to its resolution (a radar to the millimetre) with some scatter: on a slow
surface (a sewer's night flow, a wet well filling slowly) a live gauge repeats a reading now
and then, one time in seven at 1 mm and 2 mm of scatter, so a fixed count of equal readings
is a stuck gauge on one gauge and chance on another. ``stuck`` weighs a run against how often
this gauge repeated a reading lately. Shared by a reach's ends (``sewer._End``) and a wet
well (``wet_well.WetWellRule``).
"""

from __future__ import annotations

__all__ = ["STUCK_CHANCE", "STUCK_MIN_STEPS", "STUCK_READINGS", "stuck"]

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
