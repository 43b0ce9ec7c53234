"""Job locks in the database and what a (re)started service decides to run, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from storage import queries
from storage.db import session_scope
from tocsin.config import Settings
from tocsin.service import At, JobContext, Schedule, Service, Stage

T = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def claim(name: str, holder: str, now: datetime, lease: float = 60) -> bool:
    with session_scope() as session:
        return queries.claim_job(session, name=name, holder=holder, lease_seconds=lease, now=now)


def lock(name: str):  # type: ignore[no-untyped-def]
    with session_scope() as session:
        return queries.job_locks(session)[name]


def test_one_holder_at_a_time_until_the_lease_runs_out(db_url: str) -> None:
    assert claim("collect:news", "host-a", T)
    assert not claim("collect:news", "host-b", T + timedelta(seconds=30))
    assert not claim("collect:news", "host-a", T + timedelta(seconds=30)), "no re-entry"
    assert claim("score", "host-b", T), "another job is free"
    # host-a crashed: its lease runs out and host-b takes over.
    assert claim("collect:news", "host-b", T + timedelta(seconds=61))
    assert lock("collect:news").holder == "host-b"


def test_heartbeat_keeps_the_lock_and_release_records_the_outcome(db_url: str) -> None:
    assert claim("score", "host-a", T)
    with session_scope() as session:
        assert queries.renew_job(
            session, name="score", holder="host-a", lease_seconds=60, now=T + timedelta(seconds=50)
        )
    assert not claim("score", "host-b", T + timedelta(seconds=100))
    with session_scope() as session:
        assert not queries.release_job(session, name="score", holder="host-b", finished=True)
        assert queries.release_job(
            session, name="score", holder="host-a", finished=False, error="boom"
        )
    failed = lock("score")
    assert (failed.holder, failed.locked_until, failed.last_finished_at) == (None, None, None)
    assert failed.last_error == "boom"
    assert claim("score", "host-b", T + timedelta(seconds=101))
    with session_scope() as session:
        queries.release_job(
            session, name="score", holder="host-b", finished=True, now=T + timedelta(seconds=102)
        )
    done = lock("score")
    assert done.last_finished_at == T + timedelta(seconds=102) and done.last_error is None


def test_a_failing_stage_is_recorded_and_runs_again_next_time(
    sqlite_url: str, settings: Settings
) -> None:
    calls: list[str] = []

    def flaky(_ctx: JobContext) -> str:
        calls.append("flaky")
        if len(calls) == 1:
            raise ConnectionError("feed unreachable\nsecond line")
        return "fine"

    def after(_ctx: JobContext) -> str:
        calls.append("after")
        return "ran"

    service = Service(
        settings,
        schedules=[Schedule("p", (Stage("flaky", flaky), Stage("after", after)), every_seconds=60)],
        sync=None,
    )
    first = service.run_once()
    assert [(o.name, o.status) for o in first] == [("flaky", "failed"), ("after", "done")]
    assert first[0].summary == "ConnectionError: feed unreachable"
    assert lock("flaky").last_error == "ConnectionError: feed unreachable"
    assert lock("flaky").last_finished_at is None
    second = service.run_once()
    assert [o.status for o in second] == ["done", "done"]
    assert lock("flaky").last_error is None and lock("flaky").last_finished_at is not None
    assert calls == ["flaky", "after", "flaky", "after"]


def test_run_once_skips_a_stage_another_process_holds(sqlite_url: str, settings: Settings) -> None:
    assert claim("score", "other-host", datetime.now(UTC), lease=600)
    service = Service(
        settings,
        schedules=[Schedule("p", (Stage("score", lambda _c: "x"),), every_seconds=60)],
        sync=None,
    )
    assert [(o.status, o.summary) for o in service.run_once()] == [("skipped", "running elsewhere")]


def test_timed_jobs_run_once_when_due_unless_forced(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, timezone="Europe/Paris")
    runs: list[bool] = []

    def report(ctx: JobContext) -> str:
        runs.append(ctx.force_report)
        return "sent"

    at = At(hour=8, minute=0, weekday=0)
    service = Service(
        settings, schedules=[Schedule("report", (Stage("report", report),), at=at)], sync=None
    )
    assert [o.status for o in service.run_once()] == ["done"], "never ran: due"
    assert [o.status for o in service.run_once()] == ["skipped"], "done since last Monday 08:00"
    assert [o.status for o in service.run_once(force_report=True)] == ["done"]
    assert runs == [False, True]


def test_previous_occurrence_in_the_configured_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    monday_8 = At(hour=8, minute=0, weekday=0)
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert monday_8.previous(sunday, paris) == datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    monday_early = datetime(2026, 11, 23, 6, 59, tzinfo=UTC)  # 07:59 in Paris
    assert monday_8.previous(monday_early, paris) == datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    monday_late = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert monday_8.previous(monday_late, paris) == monday_late
    # Summer time: 08:00 in Paris is 06:00 UTC.
    assert monday_8.previous(datetime(2026, 7, 1, tzinfo=UTC), paris) == datetime(
        2026, 6, 29, 6, 0, tzinfo=UTC
    )
    daily = At(hour=3, minute=30)
    assert daily.previous(sunday, paris) == datetime(2026, 11, 22, 2, 30, tzinfo=UTC)


def test_a_restarted_service_plans_from_the_database(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, timezone="Europe/Paris")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
    noop = Stage("x", lambda _c: "")
    schedules = [
        Schedule("collect:news", (Stage("collect:news", noop.run),), every_seconds=900),
        Schedule("collect:hn", (Stage("collect:hn", noop.run),), every_seconds=900),
        Schedule("pipeline", (Stage("score", noop.run),), every_seconds=60),
        Schedule("report", (Stage("report", noop.run),), at=At(8, 0, weekday=0)),
        Schedule("retention", (Stage("retention", noop.run),), at=At(3, 30)),
    ]
    finished = {
        "collect:news": now - timedelta(minutes=5),  # ran 5 min ago: next in 10 min
        "collect:hn": now - timedelta(minutes=20),  # overdue: at once
        "report": now - timedelta(days=3),  # Sunday: this Monday's report was missed
        "retention": now - timedelta(hours=2),  # done after today's 03:30
    }
    for name, when in finished.items():
        assert claim(name, "old", when - timedelta(seconds=1))
        with session_scope() as session:
            queries.release_job(session, name=name, holder="old", finished=True, now=when)
    plan = Service(settings, schedules=schedules, sync=None).first_runs(now)
    assert plan == {
        "collect:news": now + timedelta(minutes=10),
        "collect:hn": now,
        "pipeline": now,  # never ran
        "report": now,
        "retention": None,
    }


def test_run_status_shows_each_job(sqlite_url: str, settings: Settings) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app

    def broken(_ctx: JobContext) -> str:
        raise RuntimeError("feed <down>")

    Service(
        settings,
        schedules=[Schedule("p", (Stage("collect:news", broken),), every_seconds=60)],
        sync=None,
    ).run_once()
    result = CliRunner().invoke(app, ["run", "--status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "collect:news" in line)
    assert "never" in line and "RuntimeError: feed <down>" in line


def test_a_scoring_backlog_sends_the_pipeline_round_again(
    sqlite_url: str, settings: Settings
) -> None:
    """Routing and alerts run between chunks of a burst, not once after the whole of it."""
    waiting = [3]  # chunks of posts still to score
    calls: list[str] = []

    def score(ctx: JobContext) -> str:
        waiting[0] -= 1
        ctx.backlog = waiting[0] > 0
        calls.append("score")
        return "chunk"

    def alerts(_ctx: JobContext) -> str:
        calls.append("alerts")
        return "sent"

    service = Service(
        settings,
        schedules=[
            Schedule("pipeline", (Stage("score", score), Stage("alerts", alerts)), every_seconds=60)
        ],
        sync=None,
    )
    outcomes = service.run_once()
    assert calls == ["score", "alerts"] * 3
    assert all(o.status == "done" for o in outcomes)
