"""SQLite writers of one process take turns in arrival order: a worker committing batch after
batch cannot starve the SMTP intake waiting to spool (tickets/store/turns.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from maildesk.tickets.store.db import open_database
from maildesk.tickets.store.turns import Turns


def _queue_up(turns: Turns, count: int, order: list[int]) -> list[threading.Thread]:
    threads = []
    for n in range(count):

        def take(n: int = n) -> None:
            turns.acquire()
            order.append(n)
            turns.release()

        thread = threading.Thread(target=take)
        thread.start()
        while len(turns._waiting) < n + 1:  # this one is in line before the next one comes
            time.sleep(0.001)
        threads.append(thread)
    return threads


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    turns, order = Turns(), []
    turns.acquire()
    threads = _queue_up(turns, 6, order)
    turns.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4, 5]


def test_a_transaction_rolled_back_and_begun_again_keeps_its_turn(tmp_path: Path) -> None:
    """`transaction.rollback()` inside `atomic()` (as `maildesk explain` does) begins anew on the
    same thread: it must not wait for itself, and the turn passes on when the block ends."""
    database = open_database(f"sqlite:///{tmp_path / 't.db'}")
    database.execute_sql("CREATE TABLE t (n INTEGER)")
    with database.atomic() as transaction:
        database.execute_sql("INSERT INTO t VALUES (1)")
        transaction.rollback()
        database.execute_sql("INSERT INTO t VALUES (2)")
    done: list[int] = []

    def write() -> None:
        with database.atomic():
            database.execute_sql("INSERT INTO t VALUES (3)")
        done.append(1)

    other = threading.Thread(target=write)
    other.start()
    other.join(timeout=10)
    assert done == [1]
    assert [n for (n,) in database.execute_sql("SELECT n FROM t ORDER BY n")] == [2, 3]
    database.close()


def test_a_thread_that_does_not_hold_the_lock_cannot_release_it() -> None:
    turns, order = Turns(), []
    turns.acquire()
    threads = _queue_up(turns, 1, order)
    stranger = threading.Thread(target=turns.release)
    stranger.start()
    stranger.join()
    time.sleep(0.05)
    assert order == []  # still held by the main thread
    turns.release()
    threads[0].join(timeout=10)
    assert order == [0]


def test_an_intake_commit_waits_at_most_one_worker_transaction(tmp_path: Path) -> None:
    """A busy writer commits transaction after transaction; another thread asking to write
    gets in after the transaction in hand, not after SQLite's busy handler wins a race."""
    database = open_database(f"sqlite:///{tmp_path / 't.db'}")
    database.execute_sql("CREATE TABLE t (n INTEGER)")
    stop, worker_commits, waited = threading.Event(), [0], []

    def worker() -> None:
        while not stop.is_set():
            with database.atomic():
                database.execute_sql("INSERT INTO t VALUES (1)")
                time.sleep(0.02)  # a batch of the pipeline's work
            worker_commits[0] += 1

    busy = threading.Thread(target=worker)
    busy.start()
    time.sleep(0.1)
    for _ in range(10):
        before = worker_commits[0]
        with database.atomic():
            database.execute_sql("INSERT INTO t VALUES (2)")
        waited.append(worker_commits[0] - before)
    stop.set()
    busy.join()
    assert max(waited) <= 2, waited  # in line behind the transaction in hand, then in
    assert database.execute_sql("SELECT count(*) FROM t WHERE n = 2").fetchone() == (10,)
    database.close()
