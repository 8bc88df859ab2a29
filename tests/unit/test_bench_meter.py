"""The benchmark's CPU meter reads what the kernel says, over a run's whole span and over its second half
(the steady state), and a ratio needs both of its figures."""

from __future__ import annotations

import os

import pytest

from bench import meter
from bench.__main__ import ratios


def _busy(seconds: float) -> int:
    """Work until the kernel has counted `seconds` of this process's CPU."""
    start, total = meter.cpu_seconds(os.getpid()), 0
    while meter.cpu_seconds(os.getpid()) - start < seconds:
        total += sum(range(1000))
    return total


def test_cpu_time_of_a_process_grows_with_the_work_it_does() -> None:
    before = meter.sample([os.getpid()], 0)
    assert _busy(0.05) > 0
    after = meter.sample([os.getpid()], 1)
    assert meter.us_per_unit(before, after) >= 50_000


def test_the_steady_state_is_the_second_half_of_the_units() -> None:
    span = meter.CpuSpan([os.getpid()], 100)
    span.progress(10)
    _busy(0.05)  # the first half's work, left out of the steady state
    span.progress(50)
    _busy(0.02)
    span.progress(100)
    span.finish(100)
    result = span.throughput(1234.0)
    assert result.eps == 1234.0
    assert result.steady_cpu_us_per_record is not None
    # 0.07 s over 90 units in all; over the last 50 the 0.02 s of the second half, not the 0.05 s before
    assert result.cpu_us_per_record >= 70_000 / 90
    assert 20_000 / 50 <= result.steady_cpu_us_per_record < 50_000 / 50


def test_no_steady_state_when_the_second_half_went_by_unseen() -> None:
    span = meter.CpuSpan([os.getpid()], 100)
    span.progress(10)
    _busy(0.02)
    span.progress(100)  # from 10 straight to the end: no sample inside the second half
    span.finish(100)
    assert span.throughput(1.0).steady_cpu_us_per_record is None


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


def test_a_run_seen_only_at_its_end_counts_from_the_process_start() -> None:
    span = meter.CpuSpan([os.getpid()], 100)
    span.progress(100)  # the first look already saw every unit done
    since_start_before = meter.cpu_seconds(os.getpid())
    span.finish(100)
    since_start_after = meter.cpu_seconds(os.getpid())
    result = span.throughput(1.0)
    assert since_start_before / 100 * 1e6 <= result.cpu_us_per_record <= since_start_after / 100 * 1e6
    assert result.steady_cpu_us_per_record is None


def test_a_throughput_names_its_figures_and_only_those_measured() -> None:
    assert meter.Throughput(5000.0, 140.0, 150.0).figures("processor") == {
        "processor_eps": 5000.0,
        "processor_cpu_us_per_record": 140.0,
        "processor_steady_cpu_us_per_record": 150.0,
    }
    assert meter.Throughput(5000.0, 140.0).figures("kstreams") == {
        "kstreams_eps": 5000.0,
        "kstreams_cpu_us_per_record": 140.0,
    }
