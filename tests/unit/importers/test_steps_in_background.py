"""The pipeline's background steps: in order, one at a time, in the caller's context, failures never lost."""

from __future__ import annotations

import contextvars
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
