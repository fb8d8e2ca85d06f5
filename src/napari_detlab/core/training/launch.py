"""Training started by a program: ``detlab train`` in a child process, relayed as events.

A child process has its own interpreter: the training loop's many small Python steps never
wait for the GUI thread's GIL, nor the GUI for them, and its throughput is the CLI's by
construction. (Measured on a 2-core CPU: the same loop on a thread inside napari trained at a
quarter of the speed; ``benchmarks/bench_gui_training.py`` compares the dock with the CLI.)

:func:`train_in_subprocess` is a generator: its caller takes the run's events as they arrive
(the train dock does so in a napari generator worker) and gets the final
:class:`~napari_detlab.core.training.events.RunFinished` as its return value.
:func:`train_in_thread` does the same with the engine on a thread of this process.

Stopping is always the engine's clean stop: setting ``cancel`` (a :class:`threading.Event`)
becomes a SIGINT for the child, which the CLI turns into a stop after the current iteration
with ``last.pt`` written. A caller that leaves before the end (closing the generator) sets it
too. Each run has a thread of its own (:func:`~napari_detlab.core.relay.relay`) that is not
a daemon: even when nobody reads the events any more, it sees the run to its end, and the
interpreter waits for that before it exits, so no process outlives its run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

from napari_detlab.core.atomic import make_folder, writing
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.relay import relay
from napari_detlab.core.training.events import Event, RunFinished, event_from_dict
from napari_detlab.core.training.options import TrainingInputError, TrainOptions

if TYPE_CHECKING:
    from napari_detlab.core.model.config import ModelConfig

__all__ = [
    "STOP_TIMEOUT_S",
    "RunEvents",
    "TrainingProcessError",
    "stop_child",
    "train_command",
    "train_in_subprocess",
    "train_in_thread",
]

# What a run yields: its events, and None when ``poll_s`` passed without one.
RunEvents = Generator[Event | None, None, RunFinished]
Post = Callable[[Event], None]

# After the SIGINT: time for the current iteration and last.pt, then the child is killed.
STOP_TIMEOUT_S = 300.0
_CLI = "import sys; from napari_detlab.cli.main import main; sys.exit(main(sys.argv[1:]))"
# The children already asked to stop (see stop_child).
_STOPPED: weakref.WeakSet[subprocess.Popen[str]] = weakref.WeakSet()
_STOPPED_LOCK = threading.Lock()


class TrainingProcessError(DetlabError, RuntimeError):
    """The training process ended without its final event (it crashed).

    The message ends with the last lines of the run's ``train.log``.
    """


def train_command(
    dataset: Path, run_dir: Path, config: Path, options: Path, *, json_events: bool = True
) -> list[str]:
    """The ``detlab train`` command line, run by this interpreter (``detlab`` need not be on
    the PATH of a napari started from an app launcher)."""
    command = [
        sys.executable, "-c", _CLI, "train", str(dataset), "--output", str(run_dir),
        "--config", str(config), "--options", str(options),
    ]  # fmt: skip
    return [*command, "--json-events"] if json_events else command


def stop_child(child: subprocess.Popen[str]) -> None:
    """Ask a training process for the engine's clean stop (SIGINT: ``last.pt`` is written).

    Only the first call signals: the CLI takes a second SIGINT for an impatient second
    Ctrl+C and aborts without ``last.pt``, and a dock that closes both sets the run's cancel
    event (whose watcher calls this) and calls this itself. Windows has no SIGINT for a
    child process: there it is terminated outright.
    """
    with _STOPPED_LOCK:
        if child in _STOPPED or child.poll() is not None:
            return
        _STOPPED.add(child)
    child.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)


def train_in_subprocess(
    dataset: Path,
    run_dir: Path,
    config: ModelConfig,
    options: TrainOptions,
    *,
    cancel: threading.Event | None = None,
    poll_s: float | None = None,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> RunEvents:
    """Run ``detlab train --json-events`` in a child process; yield its events as they come.

    Parameters
    ----------
    dataset, run_dir, config, options
        As for :func:`~napari_detlab.core.training.engine.train`; ``config.json`` and
        ``options.json`` are written to ``run_dir`` for the child (the engine rewrites both
        with the same content), and the child's stderr is kept as ``run_dir/train.log``.
    cancel
        Set it to stop the run cleanly (``last.pt`` written); the run then still ends with a
        ``RunFinished`` whose status is ``"cancelled"``.
    poll_s
        Yield ``None`` whenever this many seconds pass without an event, so that a caller
        that must be able to stop promptly (a napari worker checks for quit at each yield)
        gets the chance; ``None`` waits for the next event however long it takes.
    on_start
        Called with the child process once it runs (to stop it at once, or to watch it).

    Returns
    -------
    RunFinished
        The child's final event.

    Raises
    ------
    TrainingInputError
        The CLI ended with exit code 2 and its one-line message: it refused the inputs, or a
        file of the run could not be written (a full disk), named in the message.
    WriteError
        The run folder, its settings or ``train.log`` could not be written here.
    TrainingProcessError
        The child ended without a final event (a crash), with the end of its log.
    """
    cancel = threading.Event() if cancel is None else cancel

    def run(post: Post) -> RunFinished:
        make_folder(run_dir)
        config_path, options_path = run_dir / "config.json", run_dir / "options.json"
        config.to_json(config_path)
        options.to_json(options_path)
        log_path = run_dir / "train.log"
        with writing(log_path):
            log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115
        with log:  # the child keeps its own handle
            child = subprocess.Popen(
                train_command(dataset, run_dir, config_path, options_path),
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            )  # fmt: skip
        if on_start is not None:
            on_start(child)
        watcher = threading.Thread(
            target=_stop_when_set, args=(cancel, child), name="detlab-train-stop", daemon=True
        )
        watcher.start()
        finished: RunFinished | None = None
        assert child.stdout is not None
        for line in child.stdout:  # to the end: a child never blocks on a full pipe
            event = _parse_event(line)
            if event is not None:
                post(event)
                finished = event if isinstance(event, RunFinished) else finished
        code = child.wait()
        if finished is not None:
            return finished
        return _ended_early(code, log_path, run_dir, cancelled=cancel.is_set())

    return (
        yield from relay(
            run, on_close=cancel.set, wait_on_close=False, poll_s=poll_s, name="detlab-train-relay"
        )
    )


def train_in_thread(
    dataset: Path,
    run_dir: Path,
    config: ModelConfig,
    options: TrainOptions,
    *,
    cancel: threading.Event | None = None,
    poll_s: float | None = None,
) -> RunEvents:
    """The engine on a thread of this process, relayed as :func:`train_in_subprocess` relays
    the child (the train dock's ``use_subprocess = False``: benchmarks, and tests that fake
    the engine). Errors the engine raises are raised here."""
    from napari_detlab.core.training import engine  # looked up per run: tests replace train

    cancel = threading.Event() if cancel is None else cancel

    def run(post: Post) -> RunFinished:
        return engine.train(dataset, run_dir, config, options, on_event=post, cancel=cancel)

    return (
        yield from relay(
            run, on_close=cancel.set, wait_on_close=False, poll_s=poll_s, name="detlab-train"
        )
    )


def _stop_when_set(cancel: threading.Event, child: subprocess.Popen[str]) -> None:
    """Turn ``cancel`` into the child's clean stop; kill it if that takes too long."""
    while child.poll() is None:
        if cancel.wait(0.2):
            stop_child(child)
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
            return


def _parse_event(line: str) -> Event | None:
    try:
        return event_from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError):
        return None  # not an event (a library printing to stdout)


def _ended_early(code: int, log_path: Path, run_dir: Path, *, cancelled: bool) -> RunFinished:
    """What a child that ended without its final event means, as a result or an error."""
    if cancelled and code in (130, -signal.SIGINT):  # stopped before its engine started
        return RunFinished("cancelled", str(run_dir), message="cancelled before training began")
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if code == 2 and lines:
        raise TrainingInputError(lines[-1].split("error: ", 1)[-1])
    tail = "; ".join(lines[-3:]) or f"exit code {code}"
    raise TrainingProcessError(f"the training process ended unexpectedly ({tail})")
