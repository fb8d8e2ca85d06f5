"""Callback work as a generator: every report in order, the result or the error at the end,
and a caller that leaves early stops the work."""

from __future__ import annotations

import threading
import time

import pytest

from napari_detlab.core.relay import relay, run_to_end


def test_reports_arrive_in_order_from_another_thread_then_the_result():
    threads: list[str] = []

    def work(post):
        threads.append(threading.current_thread().name)
        for step in range(5):
            post(step)
        return "done"

    seen: list[int] = []
    assert run_to_end(relay(work, name="probe"), seen.append) == "done"
    assert seen == [0, 1, 2, 3, 4]
    assert threads == ["probe"]  # not the caller's thread


def test_the_work_s_error_is_raised_after_its_last_report():
    def work(post):
        post("before")
        raise OSError("disk full")

    steps = relay(work)
    assert next(steps) == "before"
    with pytest.raises(OSError, match="disk full"):
        next(steps)


def test_quiet_work_gives_heartbeats_when_asked():
    def work(post):
        time.sleep(0.3)
        post("late")
        return 1

    seen: list[object] = []
    assert run_to_end(relay(work, poll_s=0.05), seen.append) == 1
    assert seen[-1] == "late" and seen.count(None) >= 2


def test_leaving_early_tells_the_work_to_stop_and_waits_for_it():
    stop = threading.Event()
    finished = threading.Event()

    def work(post):
        step = 0
        while not stop.is_set():
            post(step)
            step += 1
            time.sleep(0.01)
        time.sleep(0.1)  # the clean stop takes a moment
        finished.set()
        return step

    steps = relay(work, on_close=stop.set)
    assert next(steps) == 0
    steps.close()
    assert stop.is_set() and finished.is_set()  # closed only after the work ended


def test_leaving_early_need_not_wait():
    release = threading.Event()

    def work(post):
        post("started")
        release.wait(5)

    steps = relay(work, on_close=lambda: None, wait_on_close=False)
    next(steps)
    started = time.monotonic()
    steps.close()
    assert time.monotonic() - started < 1.0
    release.set()
