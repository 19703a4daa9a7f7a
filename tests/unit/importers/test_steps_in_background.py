"""The pipeline's background steps: in order, one at a time, in the caller's context, failures never lost."""

from __future__ import annotations

import contextlib
import contextvars
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from app.importers.pipeline import _StepsInBackground

current = contextvars.ContextVar("current", default="unset")


@pytest.mark.parametrize("background", [True, False], ids=["thread", "in-place"])
def test_steps_run_in_order_one_at_a_time_in_the_callers_context(background):
    current.set("caller's")
    seen: list[tuple[int, str, bool]] = []
    running = threading.Lock()

    def step(number: int) -> None:
        assert running.acquire(blocking=False), "two steps ran at once"
        time.sleep(0.01)
        seen.append((number, current.get(), threading.current_thread() is threading.main_thread()))
        running.release()

    with _StepsInBackground(background) as steps:
        for number in range(5):
            steps.submit(lambda number=number: step(number))
    assert seen == [(number, "caller's", not background) for number in range(5)]


def test_a_failed_step_stops_the_next_submit_and_runs_nothing_after_it():
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("chunk 2 broke")

    with pytest.raises(ValueError, match="chunk 2 broke"), _StepsInBackground(True) as steps:
        steps.submit(lambda: ran.append(1))
        steps.submit(fail)
        steps.submit(lambda: ran.append(3))
        steps.submit(lambda: ran.append(4))
    assert ran == [1]


def test_a_failed_last_step_surfaces_at_the_end_of_the_block():
    with pytest.raises(ValueError, match="last"), _StepsInBackground(True) as steps:
        steps.submit(lambda: (_ for _ in ()).throw(ValueError("last")))


def test_the_callers_failure_waits_for_the_step_in_flight():
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    with pytest.raises(KeyError), _StepsInBackground(True) as steps:
        steps.submit(slow)
        raise KeyError("the caller's own failure, e.g. a job timeout")
    assert finished.is_set()  # the session is never used by the step after the caller moved on


def test_a_second_interrupt_does_not_cut_the_wait_for_the_step_short(caplog):
    """RQ's job timeout arrives as a signal in the main thread; a second one must not free the session early."""
    finished = threading.Event()

    def slow_then_fail() -> None:
        time.sleep(0.4)
        finished.set()
        raise ValueError("the step's own failure")

    def interrupt(*_: object) -> None:
        raise TimeoutError("a second interrupt")

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with pytest.raises(KeyError), _StepsInBackground(True) as steps:
            steps.submit(slow_then_fail)
            signal.setitimer(signal.ITIMER_REAL, 0.1)  # lands while __exit__ waits for the step
            raise KeyError("the caller's own failure")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert finished.is_set()
    assert "an import step failed after the import had already stopped" in caplog.text
    assert "the step's own failure" in caplog.text


@pytest.fixture
def switch_interval() -> Iterator[float]:
    """Python's default switch interval for the test, whatever an earlier test left; put back afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


@pytest.mark.parametrize("failing", [False, True], ids=["ends", "fails"])
def test_steps_in_a_thread_shorten_the_switch_interval_for_the_import_only(failing, switch_interval):
    before = switch_interval
    seen: list[float] = []

    def step() -> None:
        seen.append(sys.getswitchinterval())
        if failing:
            raise ValueError("the chunk broke")

    with pytest.raises(ValueError) if failing else contextlib.nullcontext():
        with _StepsInBackground(True) as steps:
            steps.submit(step)
    assert seen == [_StepsInBackground.SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before


def test_a_failed_callers_block_puts_the_switch_interval_back(switch_interval):
    with pytest.raises(KeyboardInterrupt), _StepsInBackground(True) as steps:
        steps.submit(lambda: None)
        raise KeyboardInterrupt
    assert sys.getswitchinterval() == switch_interval


def test_steps_in_place_leave_the_switch_interval_alone(switch_interval):
    before = switch_interval
    seen: list[float] = []
    with _StepsInBackground(False) as steps:
        steps.submit(lambda: seen.append(sys.getswitchinterval()))
    assert seen == [before]
