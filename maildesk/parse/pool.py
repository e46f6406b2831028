"""Parsing batches of mail on every core, with a time bound per message.

Parsing is pure CPU work and the largest cost of ingest, so a batch is spread over a
process pool while the main process keeps the database. The pool is also a fence: a
message that makes the parser spin past `timeout` seconds is reported as a ParseError
(and quarantined), and the stuck process is killed and replaced.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from maildesk.config import LimitsConfig
from maildesk.errors import ParseError
from maildesk.parse.issue_record import extract
from maildesk.parse.message import ParsedMail, parse

log = logging.getLogger(__name__)

# below this many messages a pool costs more to start than it saves
MIN_PARALLEL = 64
Result = ParsedMail | ParseError


def parse_safely(raw: bytes, limits: LimitsConfig, now: datetime) -> Result:
    """parse(), with every way it can fail turned into a ParseError value."""
    if len(raw) > limits.message:
        return ParseError(f"message is {len(raw)} bytes, over limits.message ({limits.message})")
    try:
        return parse(raw, limits, now)
    except ParseError as exc:
        return exc
    except RecursionError:
        return ParseError("MIME or HTML nesting too deep to parse")
    except Exception as exc:
        return ParseError(f"parser failed: {type(exc).__name__}: {exc}")


_MODELS: dict[str, Any] = {}  # per parser process: the spam model, loaded once


def prepare(raw: bytes, limits: LimitsConfig, now: datetime, spam_folder: str | None) -> Result:
    """parse_safely(), and the spam model's score beside it while the message is in this process.

    Scoring here spreads the model's cost over every core with the parsing; a message the
    screen decides before the spam rule (list mail, bounces) simply does not use its score.
    Any failure leaves the score out, and the spam rule scores in the worker, where a broken
    model is reported properly.
    """
    result = parse_safely(raw, limits, now)
    if not isinstance(result, ParsedMail) or _decided_before_spam(result):
        return result
    # the issue record (seed 003) is read here too, beside the parsing, on every core
    result = replace(result, issue_record=extract(result.subject, result.text))
    if spam_folder is None:
        return result
    try:
        return replace(result, spam=_model(spam_folder).score(raw))
    except Exception:
        return result


def _decided_before_spam(mail: ParsedMail) -> bool:
    # the screen's auto-reply and bounce rules run before the spam rule and need no database:
    # mail they will decide (list mail is most of some mailboxes) is not worth scoring
    from maildesk.screen.autoreply import detect
    from maildesk.screen.bounce import looks_like_bounce

    sender = mail.sender.email if mail.sender else ""
    return bool(detect(mail.headers, mail.subject, sender)) or looks_like_bounce(
        mail.headers, sender, mail.subject
    )


def _model(folder: str) -> Any:
    model = _MODELS.get(folder)
    if model is None:
        from maildesk.classifier.handle import CheckedSpamModel

        model = _MODELS[folder] = CheckedSpamModel(Path(folder))
    return model


def _ready(spam_folder: str | None = None) -> bool:
    # importing this module (and loading the spam model) in the child is the start-up worth
    # doing early, while the first batch is being spooled
    if spam_folder is not None:
        # a failure is reported where it matters: the worker loads the same model and says why
        with contextlib.suppress(Exception):
            _model(spam_folder)
    return True


class ParsePool:
    def __init__(self, limits: LimitsConfig, processes: int | None = None, timeout: float = 120.0) -> None:
        self.limits = limits
        self.processes = processes if processes is not None else (os.cpu_count() or 1)
        self.timeout = timeout
        # below this many messages a batch is parsed in the calling process (see MIN_PARALLEL)
        self.min_parallel = MIN_PARALLEL
        self.spam_folder: str | None = None  # set by the worker: the pool scores spam beside parsing
        self._executor: ProcessPoolExecutor | None = None

    def parse_all(self, raws: list[bytes], now: datetime) -> list[Result]:
        return self.submit(raws, now)()

    def submit(self, raws: list[bytes], now: datetime) -> Callable[[], list[Result]]:
        """Start parsing a batch; the returned function waits for and returns the results.

        The caller stores the previous batch meanwhile, so parsing and database work overlap.
        """
        if self.processes <= 1 or len(raws) < self.min_parallel:
            return lambda: [parse_safely(raw, self.limits, now) for raw in raws]
        executor = self._pool()
        futures: list[Future[Result]] = [
            executor.submit(prepare, raw, self.limits, now, self.spam_folder) for raw in raws
        ]
        return lambda: self._collect(raws, futures, now)

    def _collect(self, raws: list[bytes], futures: list[Future[Result]], now: datetime) -> list[Result]:
        results: list[Result] = []
        broken = False
        for raw, future in zip(raws, futures, strict=True):
            if broken:
                results.append(parse_safely(raw, self.limits, now))
                continue
            try:
                results.append(future.result(timeout=self.timeout))
            except FutureTimeout:
                results.append(ParseError(f"parsing took longer than {self.timeout:.0f}s"))
                broken = True
            except (BrokenProcessPool, CancelledError):
                # a parser process died (killed, out of memory), or the pool was replaced after
                # a time-out while this batch waited in it: parse the rest here instead
                log.warning("parser pool broke; parsing the rest of the batch in-process")
                results.append(parse_safely(raw, self.limits, now))
                broken = True
        if broken:
            self.close(kill=True)
        return results

    def warm(self) -> None:
        """Start the parser processes now, so their start-up overlaps other work (spooling)."""
        if self.processes > 1:
            executor = self._pool()
            for _ in range(self.processes):
                executor.submit(_ready, self.spam_folder)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: the children do not inherit our database connections or threads
            context = multiprocessing.get_context("forkserver")
            self._executor = ProcessPoolExecutor(
                # no max_tasks_per_child: with it, Python 3.11's pool can hang when it
                # replaces a worker (every message it then waits for times out)
                max_workers=self.processes,
                mp_context=context,
            )
        return self._executor

    def close(self, kill: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        # after a kill the pool notices its dead workers and the shutdown returns promptly;
        # not waiting would leave its manager thread for the interpreter to hang on at exit
        executor.shutdown(wait=True, cancel_futures=True)
