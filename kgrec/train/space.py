"""Random search spaces for ``kgrec tune --trials N``: the settings drawn instead of a full grid.

A sampled field is drawn from a distribution (``--sample train.lr=loguniform(1e-4,1e-2)``):

=========================== ====================================================================
``loguniform(LOW,HIGH)``    :math:`\\exp U(\\log \\text{LOW}, \\log \\text{HIGH})`, for scales such as
                            a learning rate or an L2 weight (LOW > 0)
``uniform(LOW,HIGH)``       :math:`U(\\text{LOW}, \\text{HIGH})`, for rates such as a dropout
``randint(LOW,HIGH)``       an integer from LOW to HIGH, both included, each as likely
=========================== ====================================================================

and a ``--grid`` field's values become choices, drawn each as likely. Floats are rounded to two
significant digits (``0.0013``), so run folders stay readable and near-equal draws share a run;
a draw that two digits would round out of ``[LOW, HIGH]`` keeps as many more as it needs.
Trial ``k`` is the ``k``-th draw of one seeded generator, so the same command draws the same
settings and a rerun reads their runs back; raising ``--trials`` keeps the first ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kgrec.errors import ConfigError

Kind = Literal["loguniform", "uniform", "randint"]
_SPEC = re.compile(r"^(loguniform|uniform|randint)\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)$")


@dataclass(frozen=True)
class Distribution:
    """A sampled field's distribution (see the module's table)."""

    kind: Kind
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> str:
        """One value, as an override's text: two significant digits, more where two would
        round it out of ``[low, high]`` (``uniform(0.9,0.999)``'s 0.996 is ``0.996``, not ``1``)."""
        if self.kind == "randint":
            return str(int(rng.integers(int(self.low), int(self.high) + 1)))
        if self.kind == "loguniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        for digits in range(2, 7):
            text = f"{float(f'{value:.{digits}g}'):g}"
            if self.low <= float(text) <= self.high:
                return text
        return repr(min(max(value, self.low), self.high))

    def __str__(self) -> str:
        number = (lambda v: str(int(v))) if self.kind == "randint" else (lambda v: f"{v:g}")
        return f"{self.kind}({number(self.low)},{number(self.high)})"


def parse_space(specs: list[str]) -> dict[str, Distribution]:
    """``["train.lr=loguniform(1e-4,1e-2)", "model.dim=randint(16,128)"]`` -> field -> distribution.

    Raises:
        ConfigError: a spec that is not ``section.field=KIND(LOW,HIGH)``, bounds that are not
            finite numbers or not in order, a non-positive loguniform bound, a non-integer (or
            beyond int64) randint bound, or a field given twice.
    """
    space: dict[str, Distribution] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        match = _SPEC.match(raw.strip())
        if not sep or not key or match is None:
            raise ConfigError(f"--sample '{spec}': expected section.field=loguniform(LOW,HIGH), uniform(LOW,HIGH) "
                              "or randint(LOW,HIGH)")  # fmt: skip
        if key in space:
            raise ConfigError(f"--sample: {key} is given twice")
        kind, low_text, high_text = match.groups()
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise ConfigError(f"--sample '{spec}': the bounds must be numbers") from None
        if not (math.isfinite(low) and math.isfinite(high)):  # inf, 1e400, nan (which no order check catches)
            raise ConfigError(f"--sample '{spec}': the bounds must be finite numbers")
        if not low < high:
            raise ConfigError(f"--sample '{spec}': expected LOW < HIGH")
        if not math.isfinite(high - low):  # -1e308, 1e308: numpy cannot draw from the range
            raise ConfigError(f"--sample '{spec}': the range is too wide to draw from")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"--sample '{spec}': loguniform needs LOW > 0")
        if kind == "randint" and not (low.is_integer() and high.is_integer() and max(-low, high) < 2**63 - 1):
            raise ConfigError(f"--sample '{spec}': randint needs integer bounds (of at most 18 digits)")
        space[key] = Distribution(kind, low, high)  # type: ignore[arg-type]
    return space


def sample_settings(
    choices: dict[str, list[str]], space: dict[str, Distribution], trials: int, seed: int = 0
) -> list[dict[str, str]]:
    """``trials`` distinct settings: each ``choices`` field one of its values, each ``space``
    field a draw of its distribution, from one generator seeded with ``seed``. A draw equal to an
    earlier setting is drawn again; a space with fewer settings than ``trials`` is refused."""
    if trials < 1:
        raise ConfigError(f"--trials: expected at least 1, got {trials}")
    if not choices and not space:
        raise ConfigError("random search needs at least one --sample or --grid field")
    clash = sorted(set(choices) & set(space))
    if clash:
        raise ConfigError(f"{clash[0]} is both in --grid and in --sample; give it in one place")
    rng = np.random.default_rng(seed)
    drawn: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    attempts = 0
    while len(drawn) < trials:
        attempts += 1
        if attempts > 100 * trials:
            raise ConfigError(f"--trials {trials}: the space holds only {len(drawn)} distinct settings "
                              "(two-digit rounding included); ask for fewer, or widen it")  # fmt: skip
        setting = {k: values[int(rng.integers(len(values)))] for k, values in choices.items()}
        setting |= {k: dist.draw(rng) for k, dist in space.items()}
        key = tuple(setting.values())
        if key not in seen:
            seen.add(key)
            drawn.append(setting)
    return drawn
