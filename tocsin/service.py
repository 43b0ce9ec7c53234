"""The service behind `tocsin run`: APScheduler jobs for collect → score → route → alert → report.

Where the state lives: in the database, not in APScheduler. Every stage has a `job_lock` row; its
`last_finished_at` says when the stage last completed, and a restarted service schedules each job
from it (an overdue job runs at once, a weekly report missed while the service was down is caught
up). APScheduler's persistent SQLAlchemy job store was not used: it pickles the job callables, and
two schedulers sharing one store would both fire every job, which is the opposite of what several
hosts need. Here each process has its own in-memory scheduler, and the row claim on `job_lock`
(a conditional UPDATE with a lease that a heartbeat renews) decides who runs a stage: two
processes never run the same stage at once, and a crashed holder's lease runs out by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from storage import queries
from storage.db import session_scope
from storage.types import utcnow
from tocsin.config import Settings

log = logging.getLogger("tocsin.service")

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class JobAbandoned(Exception):
    """Raised by a stage that stops between two batches because the service is shutting down."""


class StageFailed(Exception):
    """A stage that ran but did not do its work (a crawl that failed, say): retried next time."""


@dataclass
class JobContext:
    settings: Settings
    stop_event: threading.Event
    now: Callable[[], datetime] = utcnow
    force_report: bool = False
    # Set by the score stage when it stopped at its per-run cap with posts still waiting: the
    # pipeline then goes round again at once, so routing and alerts run between chunks.
    backlog: bool = False

    def check_stop(self) -> None:
        if self.stop_event.is_set():
            raise JobAbandoned("the service is shutting down")


@dataclass(frozen=True)
class Stage:
    """One unit of work with its own lock: `collect:<source>`, `score`, `route`, ..."""

    name: str
    run: Callable[[JobContext], str]  # returns a one-line summary for the log


@dataclass(frozen=True)
class At:
    """A time of day in the settings' time zone, on one weekday (Monday = 0) or every day."""

    hour: int
    minute: int
    weekday: int | None = None

    @classmethod
    def parse(cls, text: str, weekday: int | None = None) -> At:
        hour, minute = (int(part) for part in text.split(":"))
        return cls(hour=hour, minute=minute, weekday=weekday)

    def previous(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The latest occurrence at or before `now` (UTC)."""
        local = now.astimezone(tz)
        candidate = local.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.weekday is not None:
            candidate -= timedelta(days=(local.weekday() - self.weekday) % 7)
            step = timedelta(days=7)
        else:
            step = timedelta(days=1)
        while candidate > local:
            candidate -= step
        # Rebuild through the zone so that a DST change between the two dates is respected.
        naive = candidate.replace(tzinfo=None)
        return naive.replace(tzinfo=tz).astimezone(now.tzinfo)


@dataclass(frozen=True)
class Schedule:
    """What APScheduler fires: stages run in order, each under its own lock."""

    key: str
    stages: tuple[Stage, ...]
    every_seconds: int | None = None
    at: At | None = None


@dataclass(slots=True)
class StageOutcome:
    name: str
    status: str  # done | skipped | failed | abandoned
    summary: str = ""
    seconds: float = 0.0
    held_until: datetime | None = None  # skipped: when the other holder's lease runs out


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:1000]


class _Heartbeat:
    """Renews a stage's lease while it runs, so that a long crawl keeps its lock."""

    def __init__(self, name: str, holder: str, lease: float) -> None:
        self.name, self.holder, self.lease = name, holder, lease
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease:{name}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.lease / 3):
            try:
                with session_scope() as session:
                    kept = queries.renew_job(
                        session, name=self.name, holder=self.holder, lease_seconds=self.lease
                    )
                if not kept:
                    log.warning("job %s: lease lost (another process may take it over)", self.name)
            except Exception:
                log.exception("job %s: could not renew its lease", self.name)


_repeated_failures: dict[str, str] = {}


def run_stage(stage: Stage, ctx: JobContext, *, holder: str) -> StageOutcome:
    """Claim the stage's lock, run it, record the outcome. Never raises for a failing stage."""
    lease = float(ctx.settings.service.lock_lease_seconds)
    started = time.monotonic()
    try:
        with session_scope() as session:
            claimed = queries.claim_job(
                session, name=stage.name, holder=holder, lease_seconds=lease
            )
    except Exception as exc:
        log.exception("job %s: could not claim its lock", stage.name)
        return StageOutcome(stage.name, "failed", _first_line(exc))
    if not claimed:
        log.info("job %s: skipped, another process is running it", stage.name)
        with session_scope() as session:
            held = queries.job_locks(session).get(stage.name)
        until = held.locked_until if held is not None else None
        return StageOutcome(stage.name, "skipped", "running elsewhere", held_until=until)
    status, summary, finished = "done", "", True
    try:
        with _Heartbeat(stage.name, holder, lease):
            summary = stage.run(ctx)
    except JobAbandoned:
        status, summary, finished = "abandoned", "stopped at shutdown", False
    except Exception as exc:
        status, summary, finished = "failed", _first_line(exc), False
        if _repeated_failures.get(stage.name) == summary:
            # The same failure every minute: one line, not a traceback each time.
            log.error("job %s failed again: %s", stage.name, summary)
        else:
            log.exception("job %s failed (it runs again next time)", stage.name)
        _repeated_failures[stage.name] = summary
    seconds = time.monotonic() - started
    try:
        with session_scope() as session:
            queries.release_job(
                session,
                name=stage.name,
                holder=holder,
                finished=finished,
                error=None if finished else summary,
            )
    except Exception:
        log.exception("job %s: could not release its lock (its lease runs out)", stage.name)
    if status == "done":
        _repeated_failures.pop(stage.name, None)
        log.info("job %s done in %.1fs: %s", stage.name, seconds, summary)
    return StageOutcome(stage.name, status, summary, seconds)


# ----------------------------------------------------------------------------- the real stages


def _collect(source: str) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        from collectors.crawl import run_crawls

        summaries = run_crawls([source], settings=ctx.settings)
        text = "; ".join(_describe_crawl(s) for s in summaries) or "nothing to crawl"
        if any(s.status == "failed" for s in summaries):
            raise StageFailed(text)  # the crawl kept its cursor: the next run starts over
        return text

    return run


def _describe_crawl(summary: Any) -> str:
    counts = f"{summary.new} new, {summary.updated} updated, {summary.errors} errors"
    message = f" ({summary.message})" if summary.message else ""
    return f"{summary.source}: {summary.status}, {counts}{message}"


def sync_configuration(settings: Settings) -> None:
    """Brands, sources and the team from tocsin.toml into the database, before any job."""
    from collectors.crawl import sync_from_settings
    from triage.auth import sync_team

    sync_from_settings(settings)
    with session_scope() as session:
        sync_team(session, settings=settings)


def _score(ctx: JobContext) -> str:
    from classifier.pending import score_backlog

    per_run = ctx.settings.service.score_per_run
    total = score_backlog(
        settings=ctx.settings,
        batch=ctx.settings.service.score_batch,
        limit=per_run,
        between=lambda _done: ctx.check_stop(),
    )
    if total >= per_run:
        ctx.backlog = True
        return f"scored {total} mentions, more waiting (the pipeline goes round again)"
    return f"scored {total} mentions"


def _incidents(ctx: JobContext) -> str:
    from triage.incidents import update_incidents

    with session_scope() as session:
        incidents = update_incidents(session, now=ctx.now())
    return f"{len(incidents)} incidents updated"


def _route(ctx: JobContext) -> str:
    if not ctx.settings.triage.auto_assign:
        return "auto-assign is off"
    from triage.routing import route_new_cases

    with session_scope() as session:
        routed = route_new_cases(session, settings=ctx.settings, now=ctx.now())
    return f"routed {len(routed)} cases"


def _alerts(ctx: JobContext) -> str:
    from alerts.engine import evaluate_rules

    with session_scope() as session:
        written = evaluate_rules(session, settings=ctx.settings, now=ctx.now())
    return f"{written} alerts written to the outbox"


def _outbox(ctx: JobContext) -> str:
    from alerts.outbox import deliver_pending

    report = deliver_pending(settings=ctx.settings, now=ctx.now())
    return str(report)


def _report(ctx: JobContext) -> str:
    from reports.weekly import send_due_reports

    sent = send_due_reports(settings=ctx.settings, now=ctx.now(), force=ctx.force_report)
    return "; ".join(sent) if sent else "no report due"


def _retention(ctx: JobContext) -> str:
    from storage.db import analyze
    from storage.retention import purge

    purged = purge(settings=ctx.settings, now=ctx.now())
    analyze()  # the nightly job also keeps the query planner's statistics fresh
    return str(purged)


PIPELINE = (
    Stage("score", _score),
    Stage("incidents", _incidents),
    Stage("route", _route),
    Stage("alerts", _alerts),
    Stage("outbox", _outbox),
)


def default_schedules(settings: Settings) -> list[Schedule]:
    """The service's jobs: one per enabled source, the pipeline, the report and the purge."""
    schedules = [
        Schedule(
            key=f"collect:{source.name}",
            stages=(Stage(f"collect:{source.name}", _collect(source.name)),),
            every_seconds=source.every_seconds,
        )
        for source in settings.sources
        if source.enabled
    ]
    schedules.append(
        Schedule(key="pipeline", stages=PIPELINE, every_seconds=settings.service.pipeline_seconds)
    )
    schedules.append(
        Schedule(
            key="report",
            stages=(Stage("report", _report),),
            at=At.parse(settings.reports.time, settings.reports.weekday),
        )
    )
    schedules.append(
        Schedule(
            key="retention",
            stages=(Stage("retention", _retention),),
            at=At.parse(settings.retention.purge_time),
        )
    )
    return schedules


# ----------------------------------------------------------------------------- the service


def limit_allocator_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does) for a long-running, threaded process.

    Jobs run in worker threads and the scorer runs the model in its own thread; glibc gives each
    thread its own arena, and their fragments added up: the service's peak memory in a
    10,000-post burst was 1,360 MiB with the default, 874 MiB with 2 arenas (bench/journey.py).
    Returns False where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    m_arena_max = -8  # from glibc's malloc.h
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    try:
        libc = ctypes.CDLL(library)
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):
        return False


@dataclass
class Service:
    settings: Settings
    schedules: Sequence[Schedule] = ()
    holder: str = field(default_factory=holder_id)
    stop_event: threading.Event = field(default_factory=threading.Event)
    sync: Callable[[Settings], None] | None = sync_configuration

    def __post_init__(self) -> None:
        if not self.schedules:
            self.schedules = default_schedules(self.settings)
        self._running: set[str] = set()
        self._running_lock = threading.Condition()
        self._scheduler: BackgroundScheduler | None = None
        self.tz = ZoneInfo(self.settings.timezone)

    # -- one pass, in order (`tocsin run --once`)

    def run_once(self, *, force_report: bool = False) -> list[StageOutcome]:
        """Every stage once, in order; timed stages (report, purge) only when due or forced."""
        previous = self._install_signal_handlers()
        try:
            return self._run_all_once(force_report=force_report)
        finally:
            self._restore_signal_handlers(previous)

    def _run_all_once(self, *, force_report: bool) -> list[StageOutcome]:
        self.prepare()
        ctx = self._context(force_report=force_report)
        last = self._last_finished()
        outcomes: list[StageOutcome] = []
        for schedule in self.schedules:
            forced = force_report and schedule.key == "report"
            if schedule.at is not None and not forced and not self._due(schedule, last):
                outcomes.extend(StageOutcome(s.name, "skipped", "not due") for s in schedule.stages)
                continue
            ctx.backlog = True
            while ctx.backlog and not self.stop_event.is_set():
                ctx.backlog = False
                for stage in schedule.stages:
                    if self.stop_event.is_set():
                        stopped = StageOutcome(stage.name, "abandoned", "stopped at shutdown")
                        outcomes.append(stopped)
                        continue
                    outcomes.append(run_stage(stage, ctx, holder=self.holder))
        return outcomes

    # -- the long-running service (`tocsin run`)

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT (or `stop()`), then finish or abandon the running jobs."""
        previous = self._install_signal_handlers()
        self.prepare()
        scheduler = self._scheduler = self._build_scheduler()
        scheduler.start()
        log.info(
            "service %s started: %s",
            self.holder,
            ", ".join(schedule.key for schedule in self.schedules),
        )
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            log.info("service %s stopping", self.holder)
            scheduler.shutdown(wait=False)
            self._wait_for_running_jobs()
            self._restore_signal_handlers(previous)

    def stop(self) -> None:
        self.stop_event.set()

    def prepare(self) -> None:
        """Sync the configuration into the database; a failure is logged, jobs still run."""
        if self.sync is None:
            return
        try:
            self.sync(self.settings)
        except Exception:
            log.exception("could not sync brands, sources and team from the settings")

    def _context(self, *, force_report: bool = False) -> JobContext:
        return JobContext(self.settings, self.stop_event, force_report=force_report)

    def _last_finished(self) -> dict[str, datetime | None]:
        with session_scope() as session:
            locks = queries.job_locks(session)
        return {name: lock.last_finished_at for name, lock in locks.items()}

    def _due(
        self, schedule: Schedule, last: dict[str, datetime | None], now: datetime | None = None
    ) -> bool:
        finished = last.get(schedule.stages[0].name)
        now = now or utcnow()
        if schedule.at is not None:
            return finished is None or finished < schedule.at.previous(now, self.tz)
        assert schedule.every_seconds is not None
        return finished is None or now - finished >= timedelta(seconds=schedule.every_seconds)

    def first_runs(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """When each schedule first runs after a (re)start, from the state in `job_lock`.

        Interval jobs: at once when overdue or never run, else one interval after the last
        finish. Timed jobs (report, purge): at once when an occurrence was missed while the
        service was down, else None (their next occurrence).
        """
        moment = now or utcnow()
        last = self._last_finished()
        plan: dict[str, datetime | None] = {}
        for schedule in self.schedules:
            finished = last.get(schedule.stages[0].name)
            if schedule.every_seconds is not None:
                every = timedelta(seconds=schedule.every_seconds)
                overdue = finished is None or finished + every <= moment
                plan[schedule.key] = moment if overdue or finished is None else finished + every
            else:
                plan[schedule.key] = moment if self._due(schedule, last, moment) else None
        return plan

    def _build_scheduler(self) -> BackgroundScheduler:
        # "skipped: maximum number of running instances reached" is the one-at-a-time rule doing
        # its job, logged at every tick of a long run: keep it out of the console.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.settings.service.workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=self.tz,
        )
        now = utcnow()
        plan = self.first_runs(now)
        for schedule in self.schedules:
            first = plan[schedule.key]
            trigger: Any
            if schedule.every_seconds is not None:
                assert first is not None
                # An interval trigger fires one interval after a start date in the past, and at
                # the start date itself when it lies ahead.
                trigger = IntervalTrigger(
                    seconds=schedule.every_seconds, start_date=first, timezone=self.tz
                )
            else:
                assert schedule.at is not None
                at = schedule.at
                trigger = CronTrigger(
                    day_of_week=DAY_NAMES[at.weekday] if at.weekday is not None else "*",
                    hour=at.hour,
                    minute=at.minute,
                    timezone=self.tz,
                )
            scheduler.add_job(self._fire, trigger, args=[schedule], id=schedule.key)
            if first is not None and first <= now:
                scheduler.add_job(
                    self._fire, "date", run_date=now, args=[schedule], id=f"{schedule.key}:now"
                )
        return scheduler

    def _fire(self, schedule: Schedule, retry: bool = False) -> None:
        with self._running_lock:
            if schedule.key in self._running or self.stop_event.is_set():
                return  # the first run and the interval met: one at a time
            self._running.add(schedule.key)
        try:
            if retry and not self._due(schedule, self._last_finished()):
                return  # the other holder finished it meanwhile
            ctx = self._context()
            held_until = None
            ctx.backlog = True
            while ctx.backlog and held_until is None and not self.stop_event.is_set():
                ctx.backlog = False
                for stage in schedule.stages:
                    if self.stop_event.is_set():
                        break
                    outcome = run_stage(stage, ctx, holder=self.holder)
                    if outcome.held_until is not None:
                        held_until = max(held_until or outcome.held_until, outcome.held_until)
            if held_until is not None:
                self._retry_after(schedule, held_until)
        finally:
            with self._running_lock:
                self._running.discard(schedule.key)
                self._running_lock.notify_all()

    def _retry_after(self, schedule: Schedule, held_until: datetime) -> None:
        """Another process held a stage: try again when its lease runs out, so that a crashed
        holder delays the job by one lease, not by a whole interval (or week)."""
        scheduler = self._scheduler
        if scheduler is None or self.stop_event.is_set():
            return
        scheduler.add_job(
            self._fire,
            "date",
            run_date=held_until + timedelta(seconds=1),
            args=[schedule, True],
            id=f"{schedule.key}:retry",
            replace_existing=True,
        )

    def _wait_for_running_jobs(self) -> None:
        grace = self.settings.service.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        with self._running_lock:
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._running_lock.wait(left)
            still = sorted(self._running)
        if still:
            # Threads cannot be interrupted: give the locks back so that the next run (here or
            # on another host) can start, and let the caller exit the process.
            log.warning("abandoning running jobs at shutdown: %s", ", ".join(still))
            self._release_own_locks()
            raise ShutdownTimeout(still)
        log.info("service %s stopped cleanly", self.holder)

    def _release_own_locks(self) -> None:
        with session_scope() as session:
            for name, lock in queries.job_locks(session).items():
                if lock.holder == self.holder:
                    queries.release_job(
                        session,
                        name=name,
                        holder=self.holder,
                        finished=False,
                        error="abandoned at shutdown",
                    )

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop_event.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handle)
        return previous

    def _restore_signal_handlers(self, previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ShutdownTimeout(Exception):
    """Jobs were still running when the shutdown grace ran out (their locks were released)."""

    def __init__(self, jobs: list[str]) -> None:
        super().__init__(", ".join(jobs))
        self.jobs = jobs


def describe(outcomes: Sequence[StageOutcome]) -> Iterator[str]:
    for outcome in outcomes:
        yield f"{outcome.name:<24} {outcome.status:<10} {outcome.summary}"
