"""Real service processes: signals, failures, restarts, and two hosts sharing one PostgreSQL."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from storage import queries
from storage.db import session_scope
from tests.service.conftest import Processes, lines, wait_until


def job_lock(name: str):  # type: ignore[no-untyped-def]
    with session_scope() as session:
        return queries.job_locks(session).get(name)


def test_two_services_on_one_postgres_never_run_a_job_at_once(
    postgres_url: str, processes: Processes, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    hosts = [processes.host("exclusive", work) for _ in range(2)]
    wait_until(lambda: len(lines(work / "runs.log")) >= 6, what="six runs of the job")
    assert [Processes.terminate(host) for host in hosts] == [0, 0]
    assert lines(work / "overlaps.log") == [], "the job ran in both processes at once"
    skipped = (work / "service.log").read_text()
    assert "skipped, another process is running it" in skipped
    assert job_lock("work").holder is None


def test_sigterm_abandons_the_running_job_and_a_restart_runs_it_again(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    first = processes.host("slow", work)
    wait_until(lambda: len(lines(work / "started.log")) == 1, what="the slow job to start")
    assert Processes.terminate(first) == 0
    assert lines(work / "exit.log") == ["clean"]
    lock = job_lock("slow")
    assert lock.holder is None and lock.last_finished_at is None
    assert lock.last_error == "stopped at shutdown"
    second = processes.host("slow", work)
    wait_until(lambda: len(lines(work / "started.log")) == 2, what="the job to run again")
    assert Processes.terminate(second) == 0


def test_a_job_that_ignores_the_stop_is_abandoned_after_the_grace_period(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    host = processes.host("stuck", work, TOCSIN_SERVICE__SHUTDOWN_GRACE_SECONDS="1")
    wait_until(lambda: len(lines(work / "started.log")) == 1, what="the stuck job to start")
    assert Processes.terminate(host, timeout=30) == 3
    lock = job_lock("stuck")
    assert lock.holder is None and lock.last_error == "abandoned at shutdown"


def test_a_failing_job_is_logged_and_retried_and_never_kills_the_service(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    host = processes.host("failing", work)
    wait_until(
        lambda: len(lines(work / "broken.log")) >= 3 and len(lines(work / "healthy.log")) >= 3,
        what="three runs of each job",
    )
    assert host.poll() is None
    assert Processes.terminate(host) == 0
    log = (work / "service.log").read_text()
    assert "job broken failed (it runs again next time)" in log
    assert "RuntimeError: the feed is down" in log
    assert job_lock("broken").last_error == "RuntimeError: the feed is down"
    assert job_lock("healthy").last_error is None


def test_a_restart_resumes_from_the_last_run_and_a_killed_holder_loses_its_lease(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    first = processes.host("hourly", work)
    wait_until(lambda: len(lines(work / "hourly.log")) == 1, what="the first run")
    wait_until(lambda: job_lock("hourly").last_finished_at is not None, what="the run recorded")
    assert Processes.terminate(first) == 0
    second = processes.host("hourly", work)
    wait_until(
        lambda: (work / "service.log").read_text().count("started: hourly") == 2,
        what="the second start",
    )
    assert Processes.terminate(second) == 0
    assert len(lines(work / "hourly.log")) == 1, "ran an hour early after the restart"

    # A holder killed outright keeps its lock only until the lease (5 s here) runs out.
    slow = tmp_path / "slow"
    killed = processes.host("slow", slow)
    wait_until(lambda: len(lines(slow / "started.log")) == 1, what="the slow job to start")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert job_lock("slow").holder is not None
    successor = processes.host("slow", slow)
    wait_until(lambda: len(lines(slow / "started.log")) == 2, what="the successor to take over")
    owners = lines(slow / "started.log")
    assert owners[1] == str(successor.pid) != owners[0]
    assert Processes.terminate(successor) == 0


def test_tocsin_run_stops_cleanly_on_sigterm(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    service = processes.start(["-m", "tocsin", "run"], log=log)
    wait_until(lambda: "started: pipeline, report, retention" in log.read_text(), what="start")
    wait_until(lambda: "job retention done" in log.read_text(), what="the purge to catch up")
    assert Processes.terminate(service) == 0
    text = log.read_text()
    assert "received SIGTERM" in text and "stopped cleanly" in text
    assert "Traceback" not in text.split("received SIGTERM")[1]
    assert sys.executable  # the same interpreter ran it


def test_run_once_fails_only_on_a_configuration_error(
    sqlite_url: str, processes: Processes, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[service]\npipeline_seconds = 0\n", encoding="utf-8")
    log = tmp_path / "bad.log"
    run = processes.start(["-m", "tocsin", "run", "--once"], log=log, TOCSIN_CONFIG=str(bad))
    assert run.wait(timeout=120) == 1
    assert log.read_text().strip() == (
        f"Error: {bad}: service.pipeline_seconds: Input should be greater than or equal to 1"
    )
    good = tmp_path / "good.toml"
    good.write_text('[reports]\ntime = "08:00"\n', encoding="utf-8")
    log = tmp_path / "good.log"
    run = processes.start(["-m", "tocsin", "run", "--once"], log=log, TOCSIN_CONFIG=str(good))
    assert run.wait(timeout=300) == 0, "a failing job is reported, not an exit status"
    text = log.read_text()
    for stage in ("score", "incidents", "route", "alerts", "outbox", "report", "retention"):
        assert any(line.startswith(stage + " ") for line in text.splitlines()), stage
