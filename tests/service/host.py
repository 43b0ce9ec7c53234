"""A service process for the tests: the real `Service` with small real jobs instead of the
pipeline, so that locks, failures, restarts and signals can be watched from outside.

    python -m tests.service.host MODE WORKDIR      (database and settings from TOCSIN_* variables)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from storage import db as storage_db
from tocsin.config import load_settings
from tocsin.service import JobContext, Schedule, Service, ShutdownTimeout, Stage


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def schedules(mode: str, work: Path) -> list[Schedule]:
    def exclusive(_ctx: JobContext) -> str:
        marker = work / "running"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            _append(work / "overlaps.log", str(os.getpid()))
            raise
        try:
            _append(work / "runs.log", str(os.getpid()))
            time.sleep(1.2)  # longer than the interval: the two hosts contend
        finally:
            os.close(fd)
            marker.unlink()
        return "worked"

    def slow(ctx: JobContext) -> str:
        _append(work / "started.log", str(os.getpid()))
        for _ in range(600):
            ctx.check_stop()
            time.sleep(0.1)
        return "finished"

    def stuck(_ctx: JobContext) -> str:
        _append(work / "started.log", str(os.getpid()))
        time.sleep(120)
        return "finished"

    def once_an_hour(_ctx: JobContext) -> str:
        _append(work / "hourly.log", str(os.getpid()))
        return "ran"

    def broken(_ctx: JobContext) -> str:
        _append(work / "broken.log", str(os.getpid()))
        raise RuntimeError("the feed is down")

    def healthy(_ctx: JobContext) -> str:
        _append(work / "healthy.log", str(os.getpid()))
        return "ok"

    table = {
        "exclusive": [Schedule("work", (Stage("work", exclusive),), every_seconds=1)],
        "slow": [Schedule("slow", (Stage("slow", slow),), every_seconds=3600)],
        "stuck": [Schedule("stuck", (Stage("stuck", stuck),), every_seconds=3600)],
        "hourly": [Schedule("hourly", (Stage("hourly", once_an_hour),), every_seconds=3600)],
        "failing": [
            Schedule("broken", (Stage("broken", broken),), every_seconds=1),
            Schedule("healthy", (Stage("healthy", healthy),), every_seconds=1),
        ],
    }
    return table[mode]


def main() -> None:
    mode, work = sys.argv[1], Path(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = load_settings()
    storage_db.configure(settings.resolved_database_url)
    service = Service(settings, schedules=schedules(mode, work), sync=None)
    try:
        service.run_forever()
    except ShutdownTimeout:
        logging.shutdown()
        os._exit(3)
    _append(work / "exit.log", "clean")


if __name__ == "__main__":
    main()
