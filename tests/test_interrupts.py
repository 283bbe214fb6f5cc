"""Ctrl-C, the reader's stop button: it stops what it interrupts and loses nothing that finished.

A sweep interrupted while its workers train stops them (pending points cancelled, running
ones ended) and keeps every result it already stored; its pool still works for the next
sweep. A live panel interrupted in an update says "interrupted", keeps its last figure
and answers the next move. A write interrupted half-way leaves no file that is served.
"""

import json
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell
from made_up import history

from lmlab import display as viz
from lmlab import sweep
from lmlab.cache import Cache
from lmlab.display import panels


def slow_point(config):
    """A sweep point that takes `seconds` in a worker and marks its start (with the worker's pid)
    and its end, so the test sees work that goes on behind the sweep's back."""
    folder = Path(config["folder"])
    (folder / f"started-{config['i']}-{os.getpid()}").touch()
    time.sleep(config["seconds"])
    (folder / f"done-{config['i']}").touch()
    return {"i": config["i"]}


def dies(config):
    """A sweep point whose worker dies, as one killed for memory does."""
    os._exit(1)


def ctrl_c_when(ready, gone: threading.Event, limit: float = 60.0) -> threading.Thread:
    """Send this process SIGINT, as Ctrl-C does, once `ready()` holds, unless `gone` is set first
    (the sweep ended on its own: a late SIGINT would stop the whole test session)."""
    def wait_then_interrupt():
        deadline = time.monotonic() + limit
        while not ready() and not gone.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not gone.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=wait_then_interrupt, daemon=True)
    thread.start()
    return thread


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def interrupt_a_sweep(tmp_path, executor, points: int = 12, seconds: float = 0.4):
    """Run a sweep of `points` slow points on `executor`, press Ctrl-C once the first result is
    stored, and return the marks and stored results at the moment `run` gave up, and 1.2 s later."""
    marks, cache = tmp_path / "marks", Cache(tmp_path / "sweep")
    marks.mkdir()
    configs = [{"i": i, "folder": str(marks), "seconds": seconds} for i in range(points)]
    gone = threading.Event()
    thread = ctrl_c_when(lambda: any(cache.root.glob("sweep-*.json")), gone)
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep.run(configs, slow_point, cache, executor=executor)
    finally:
        gone.set()
        thread.join()

    def seen():
        return {p.name for p in marks.iterdir()}, {p.name for p in cache.root.glob("sweep-*.json")}

    at_stop = seen()
    time.sleep(1.2)  # three points' time: a worker still going would have started or finished one
    return configs, cache, at_stop, seen()


def stopped_cleanly(configs, marks, stored, later) -> None:
    assert later == (marks, stored), "the workers went on after Ctrl-C"
    assert stored and sum(m.startswith("started") for m in marks) < len(configs)
    pids = {int(m.split("-")[2]) for m in marks if m.startswith("started")}
    assert not any(alive(pid) for pid in pids), "the worker processes outlived the interrupt"


def test_ctrl_c_stops_a_sweep_on_a_local_pool_and_keeps_what_finished(tmp_path):
    """The reader's case: `sweep.local_pool(2)`, spawned workers, interrupted in the parent."""
    pool = sweep.local_pool(2)
    try:
        configs, cache, (marks, stored), later = interrupt_a_sweep(tmp_path, pool)
        stopped_cleanly(configs, marks, stored, later)
        kept = [c for c in configs if cache.load_json(sweep.config_key(slow_point, c)) is not None]
        assert len(kept) == len(stored)
    finally:
        pool.shutdown()


def test_the_same_pool_runs_the_next_sweep_after_ctrl_c_or_a_dead_worker(tmp_path):
    """A notebook keeps one pool for all its cells: after Ctrl-C, or a worker killed (for memory,
    say), which breaks a process pool for good, the next cell's sweep must still run on it, and
    the points stored before the interrupt come from the cache, not from a worker. (Forked
    workers here, only because they start in milliseconds.)"""
    pool = sweep.LocalPool(2, "fork")
    try:
        configs, cache, (marks, stored), later = interrupt_a_sweep(tmp_path, pool)
        stopped_cleanly(configs, marks, stored, later)
        kept = [c for c in configs if cache.load_json(sweep.config_key(slow_point, c)) is not None]
        again = [*kept, *[c for c in configs if c not in kept][:1]]
        assert sweep.run(again, slow_point, cache, executor=pool) == [{"i": c["i"]} for c in again]
        restarted = {m for m in os.listdir(tmp_path / "marks") if m.startswith("started")} - marks
        assert [int(m.split("-")[1]) for m in restarted] == [again[-1]["i"]]
        with pytest.raises(BrokenProcessPool):
            sweep.run([{"i": -1}], dies, cache, executor=pool)
        assert sweep.run(configs[-1:], slow_point, cache, executor=pool) == [{"i": configs[-1]["i"]}]
    finally:
        pool.shutdown()


def test_ctrl_c_stops_the_workers_of_a_process_pool_the_caller_owns(tmp_path):
    """The documented `with ProcessPoolExecutor(...) as pool:` recipe: leaving the block must not wait
    for the whole queue, and no worker may go on training."""
    with ProcessPoolExecutor(2) as pool:
        configs, _, (marks, stored), later = interrupt_a_sweep(tmp_path, pool)
    stopped_cleanly(configs, marks, stored, later)


def test_a_failing_point_cancels_the_points_not_yet_started(tmp_path):
    """An error ends the sweep; the pool must not go on through the rest of the queue for no one."""
    started = []

    def point(config):
        started.append(config["i"])
        if config["i"] == 0:
            raise RuntimeError("a bad point")
        time.sleep(0.02)
        return config

    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="a bad point"):
        sweep.run([{"i": i} for i in range(30)], point, Cache(tmp_path), executor=pool)
    assert len(started) <= 2, f"{len(started)} points ran after the sweep had failed"


def test_local_pool_refuses_a_bad_worker_count():
    for workers in (0, -2, 1.5):
        with pytest.raises(ValueError, match=f"workers must be an integer ≥ 1, got {workers}"):
            sweep.local_pool(workers)


# ---------------------------------------------------------------- panels


@pytest.fixture
def shell():
    """An IPython shell, as in a notebook: there an Output widget swallows what its block raises."""
    return InteractiveShell.instance()


@pytest.fixture
def shown(monkeypatch):
    figures = []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", figures.append)
    return figures


def test_an_interrupted_live_panel_says_so_keeps_its_figure_and_answers_the_next_move(shell, shown):
    def update(n):
        if n == 2:
            raise KeyboardInterrupt  # the reader pressed stop while it ran
        return go.Figure(go.Bar(y=[n]))

    box = widgets.IntText(value=1)
    panel = viz.live_panel(update, {"n": box}, note="ready")
    status = panel.children[0].children[-1]
    box.value = 2  # in a widget callback: the panel takes the interrupt, the kernel goes on
    assert status.value == "interrupted" and len(shown) == 1 and shown[-1].data[0].y == (1,)
    box.value = 3
    assert status.value == "ready" and shown[-1].data[0].y == (3,)


def test_an_interrupted_training_panel_keeps_the_curve_it_drew_and_trains_again(shell, shown):
    def train(callback, p):
        h = history(2)
        callback(h)
        if p == 0.5:
            raise KeyboardInterrupt  # stopped after its first evaluation
        return h

    slider = widgets.SelectionSlider(options=[0.0, 0.5, 0.9], value=0.0)
    panel = viz.training_panel(train, {"p": slider}, title=lambda p: f"p = {p}")
    status = panel.children[0].children[-1]
    slider.value = 0.5
    assert status.value == "interrupted" and shown[-1].layout.title.text == "p = 0.5"
    slider.value = 0.9
    assert status.value == "" and [t.name for t in shown[-1].data] == ["p = 0.0 val", "p = 0.9 val", "p = 0.9 train"]


def test_an_interrupted_button_panel_says_so_and_acts_again(shell, shown):
    acted = []

    def act(v):
        acted.append(v)
        if len(acted) == 1:
            raise KeyboardInterrupt
        return v

    slider = widgets.IntSlider(value=1, min=1, max=3)
    panel = viz.button_panel(lambda v, r=None: go.Figure(go.Bar(y=[v])), slider, "train", act, lambda r: f"done {r}")
    button, status = panel.children[0].children[1:]
    button.click()
    assert status.value == "interrupted" and len(shown) == 1
    button.click()
    assert status.value == "done 1" and acted == [1, 1]


def test_an_interrupt_while_the_panel_is_built_stops_the_cell(shell, shown):
    """The first update runs in the reader's cell: Ctrl-C stops that cell (and a Run All) as it
    stops any cell, instead of ending in an error about the panel's own variables."""
    def update(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        viz.live_panel(update, {"n": widgets.IntText(value=1)})


# ---------------------------------------------------------------- writes


def test_an_interrupt_in_a_cache_write_leaves_nothing_served(tmp_path, monkeypatch):
    cache = Cache(tmp_path)

    def torn_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        cache.save_run("run", {"w": torch.ones(2)}, {"eval_val": [1.0]})
    assert list(tmp_path.iterdir()) == [], "a torn write left a file behind"
    monkeypatch.undo()
    # interrupted between the weights and the history that marks the entry complete: not served
    monkeypatch.setattr(Cache, "save_json", lambda self, name, obj: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cache.save_run("run", {"w": torch.ones(2)}, {"eval_val": [1.0]})
    monkeypatch.undo()
    assert cache.load_run("run", torch.nn.Linear(2, 1), json.dumps) is None
