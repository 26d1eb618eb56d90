"""The fuzz budget and the count of generated inputs, summed over the fuzz tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

# Generated inputs per CI run: 13,500 to the decoders and 2,000 end to end (>= 10,000).
PARSER_EXAMPLES = 3_000
DECODER_EXAMPLES = 1_500
END_TO_END_EXAMPLES = 1_000


@dataclass
class FuzzTally:
    inputs: int = 0
    failures: int = 0

    def summary(self) -> str:
        return f"fuzz: {self.inputs:,} inputs, {self.failures:,} failures"


TALLY = FuzzTally()


def fuzz_settings(max_examples: int) -> settings:
    """Random each run, no example database written into the repository, no deadline."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def run_counted(test: Callable[[], None]) -> None:
    """Run a hypothesis test, counting a failure in the summary before re-raising it."""
    try:
        test()
    except BaseException:
        TALLY.failures += 1
        raise
