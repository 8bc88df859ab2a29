"""The benchmark's CPU meter reads what the kernel says, and a ratio needs both of its figures."""

from __future__ import annotations

import os

import pytest

from bench import meter
from bench.__main__ import ratios


def test_cpu_time_of_a_process_grows_with_the_work_it_does() -> None:
    before = meter.sample([os.getpid()], 0)
    total = 0
    while meter.cpu_seconds(os.getpid()) - before.cpu_s < 0.05:  # busy until the kernel has counted it
        total += sum(range(1000))
    after = meter.sample([os.getpid()], 1)
    assert total > 0
    assert meter.us_per_unit(before, after) >= 50_000


def test_no_work_between_samples_is_not_a_measurement() -> None:
    sample = meter.sample([os.getpid()], 10)
    with pytest.raises(RuntimeError, match="no work done"):
        meter.us_per_unit(sample, sample)


def test_ratios_only_where_both_figures_were_measured() -> None:
    figures: dict[str, object] = {
        "processor_cpu_us_per_record": 150.0,
        "kstreams_cpu_us_per_record": 200.0,
        "processor_eos_cpu_us_per_record": 300.0,
        "kstreams_error": "did not build",
    }
    assert ratios(figures) == {"cpu_vs_kstreams": 0.75}
