"""`tocsin demo`: set the demo up, replay its backlog, then run the service and the board.

Everything runs on the embedded SQLite database in the demo folder, with no network: the replay
collectors read local feed files that a timer thread fills with the demo's live posts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from storage import db as storage_db
from storage import migrate, queries
from storage.db import session_scope
from storage.types import utcnow
from tocsin import config as tocsin_config
from tocsin.demo.feed import FeedWriter, load_posts
from tocsin.demo.history import add_history
from tocsin.demo.setup import BRANDS, TEAM, demo_config, feed_path, write_config

Echo = Callable[[str], None]
STATE_FILES = ("tocsin.db", "tocsin.db-wal", "tocsin.db-shm", "alerts.mbox")
STATE_DIRS = ("feeds", "reports", "logs", "locks")


@dataclass
class DemoOptions:
    demo_dir: Path
    port: int = 8501
    speed: float = 1.0
    collect_seconds: int = 60
    pipeline_seconds: int = 10
    board: bool = True
    keep: bool = False
    model_weights: Path | None = None  # a model folder from `tocsin train` (default: packaged)


@dataclass
class Demo:
    options: DemoOptions
    echo: Echo = print
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    writer: FeedWriter | None = None

    @property
    def config_path(self) -> Path:
        return self.options.demo_dir / "tocsin.toml"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env["TOCSIN_CONFIG"] = str(self.config_path.resolve())
        env["TOCSIN_DATA_DIR"] = str(self.options.demo_dir.resolve())
        # Fewer malloc arenas from the start (see tocsin.service.limit_allocator_arenas).
        env.setdefault("MALLOC_ARENA_MAX", "2")
        return env

    def prepare(self) -> tocsin_config.Settings:
        """Config, a fresh database, the team with its demo passwords."""
        folder = self.options.demo_dir
        folder.mkdir(parents=True, exist_ok=True)
        if not self.options.keep:
            for name in STATE_FILES:
                (folder / name).unlink(missing_ok=True)
            for name in STATE_DIRS:
                shutil.rmtree(folder / name, ignore_errors=True)
        config = demo_config(
            folder.resolve(),
            port=self.options.port,
            collect_seconds=self.options.collect_seconds,
            pipeline_seconds=self.options.pipeline_seconds,
            model_weights=self.options.model_weights,
        )
        write_config(self.config_path, config)
        os.environ.update(self.env())
        os.environ.pop("TOCSIN_DATABASE_URL", None)
        tocsin_config.get_settings.cache_clear()
        settings = tocsin_config.get_settings()
        storage_db.configure(settings.resolved_database_url)
        migrate.upgrade()
        from tocsin.service import sync_configuration
        from triage.auth import set_password

        sync_configuration(settings)
        with session_scope() as session:
            for member in TEAM:
                set_password(session, email=member.email, password=member.password)
        return settings

    def replay_backlog(self, settings: tocsin_config.Settings) -> None:
        """The past week: written to the feeds, collected, scored, and given a handling history."""
        from classifier.pending import score_backlog
        from collectors.crawl import run_crawls
        from triage.incidents import update_incidents

        start = utcnow()
        feeds = {
            str(b["name"]): feed_path(self.options.demo_dir.resolve(), str(b["slug"]))
            for b in BRANDS
        }
        self.writer = FeedWriter(load_posts(), feeds=feeds, start=start, speed=self.options.speed)
        backlog = self.writer.write_backlog()
        self.echo(f"Demo: {backlog} posts from the past week written to the replay feeds.")
        for summary in run_crawls(settings=settings):
            self.echo(f"  collected {summary.source}: {summary.status} {summary.message or ''}")
        scored = score_backlog(settings=settings, batch=settings.service.score_batch)
        with session_scope() as session:
            update_incidents(session, now=start)
            handled = add_history(
                session, settings=settings, now=start, older_than=timedelta(hours=3)
            )
        self.echo(f"  scored {scored} posts; {handled} older cases given a week of team history.")

    def build_reports(self, settings: tocsin_config.Settings) -> None:
        from reports.weekly import build, reports_dir

        now = utcnow()
        weeks = {now.strftime("%G-W%V"), (now - timedelta(days=7)).strftime("%G-W%V")}
        for brand in BRANDS:
            for week in sorted(weeks):
                try:
                    with session_scope() as session:
                        built = build(
                            session,
                            brand=str(brand["name"]),
                            week=week,
                            settings=settings,
                            out_dir=reports_dir(settings),
                        )
                    self.echo(f"  report {brand['name']} {week}: {built.html_path}")
                except Exception as exc:  # a report is a bonus: the demo goes on without it
                    self.echo(f"  report {brand['name']} {week} not built: {exc}")

    def start_processes(self) -> None:
        python = [sys.executable, "-m", "tocsin"]
        self.children.append(subprocess.Popen([*python, "run"], env=self.env()))
        if self.options.board:
            command = [*python, "board", "--port", str(self.options.port)]
            self.children.append(subprocess.Popen(command, env=self.env()))

    def banner(self) -> None:
        o = self.options
        self.echo("")
        self.echo(f"Tocsin demo running. Board: http://127.0.0.1:{o.port}")
        self.echo("Sign in as (demo passwords):")
        for m in TEAM:
            self.echo(f"  {m.role:6} {m.name:15} {m.email:20} {m.password}")
        self.echo(f"Alerts mailbox: {(o.demo_dir / 'alerts.mbox').resolve()}")
        self.echo(f"Live posts arrive over the next {45 / o.speed:.0f} minutes. Ctrl+C stops.")

    def wait(self) -> int:
        stop = {"signal": False}

        def _stop(signum: int, _frame: object) -> None:
            stop["signal"] = True

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop["signal"]:
                exited = [c for c in self.children if c.poll() is not None]
                if exited:
                    self.echo(f"A demo process stopped (exit {exited[0].returncode}); stopping.")
                    return exited[0].returncode or 1
                time.sleep(0.5)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()

    def shutdown(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        storage_db.dispose()


def run_demo(options: DemoOptions, *, echo: Echo = print) -> int:
    demo = Demo(options, echo=echo)
    settings = demo.prepare()
    demo.replay_backlog(settings)
    demo.build_reports(settings)
    with session_scope() as session:
        counts = queries.table_counts(session)
    echo(
        f"  {counts['mention']} mentions, {counts['case']} cases in "
        f"{settings.resolved_database_url}"
    )
    storage_db.dispose()
    demo.start_processes()
    assert demo.writer is not None
    demo.writer.start_live()
    demo.banner()
    return demo.wait()
