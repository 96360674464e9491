"""Noise to run detectors on, where every alarm is false: one catalogue for the benches and tests
that measure false alarms. Each draws ``n`` values from ``rng``, centred where metrics sit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Noise = Callable[[np.random.Generator, int], np.ndarray]

NOISES: dict[str, Noise] = {
    "gaussian": lambda rng, n: rng.normal(100, 5, n),
    "student_t3": lambda rng, n: 100 + 5 * rng.standard_t(3, n),
    "student_t5": lambda rng, n: 100 + 5 * rng.standard_t(5, n),
    "laplace": lambda rng, n: rng.laplace(100, 5, n),
    "poisson2": lambda rng, n: rng.poisson(2, n).astype(float),
    "lognormal": lambda rng, n: rng.lognormal(3, 1, n),
}


def some(*names: str) -> dict[str, Noise]:
    """The named noises, in that order."""
    return {name: NOISES[name] for name in names}
