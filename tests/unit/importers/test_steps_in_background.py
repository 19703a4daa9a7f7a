"""The pipeline's background steps: in order, one at a time, in the caller's context, failures never lost."""

from __future__ import annotations

import contextvars
import signal
import threading
import time

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


def test_a_failed_last_step_still_lets_the_steps_thread_go():
    with pytest.raises(ValueError, match="last"), _StepsInBackground(True) as steps:
        steps.submit(lambda: (_ for _ in ()).throw(ValueError("last")))
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("import-step")]
