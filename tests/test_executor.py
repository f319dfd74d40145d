"""Executor seam: serial and process pools give results in input order."""

from __future__ import annotations

import pytest

from flare_uda.executor import (
    EXECUTORS,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    get_executor,
)


def square(x: int) -> int:
    return x * x


def test_serial_and_process_agree_in_order():
    items = list(range(7))
    expected = [x * x for x in items]
    assert SerialExecutor(progress=False).map(square, items) == expected
    assert ProcessExecutor(workers=2, progress=False).map(square, items, desc="sq") == expected
    assert ProcessExecutor(workers=1, progress=False).map(square, iter(items)) == expected


@pytest.mark.parametrize("engine", [SerialExecutor(progress=False), ProcessExecutor(workers=2)])
def test_as_completed_yields_every_index_once(engine):
    got = list(engine.as_completed(square, range(6), desc=None))
    assert sorted(got) == [(i, i * i) for i in range(6)]


def test_as_completed_default_streams_map_results_in_order():
    class MapOnly(Executor):
        def map(self, fn, items, desc=None):
            return [fn(x) for x in items]

    assert list(MapOnly().as_completed(square, [3, 1])) == [(0, 9), (1, 1)]


def test_get_executor():
    assert isinstance(get_executor(), SerialExecutor)
    ex = SerialExecutor()
    assert get_executor(ex) is ex
    assert isinstance(get_executor("process", workers=1), ProcessExecutor)
    assert EXECUTORS.names() == ["process", "ray", "serial"]
    with pytest.raises(KeyError, match="Did you mean 'serial'"):
        get_executor("serail")


def test_custom_engine_plugs_in():
    class Reversed(Executor):
        def map(self, fn, items, desc=None):
            return [fn(x) for x in reversed(list(items))][::-1]

    assert get_executor(Reversed()).map(square, [1, 2, 3]) == [1, 4, 9]


def test_bad_workers():
    with pytest.raises(ValueError, match=r"workers must be >= 1 \(or null: one per core\), got 0"):
        ProcessExecutor(workers=0)
