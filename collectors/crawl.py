"""Run crawls: one source per process, because a Twisted reactor cannot be restarted.

    python -m collectors.crawl --source NAME [--database URL] [--lock-dir DIR]

runs one crawl now and prints its summary as the last line of stdout (`SUMMARY_PREFIX` + JSON).
`run_crawls()` (used by `tocsin collect` and the service) syncs the settings' brands and sources
into the database and runs each source in such a subprocess, one after the other.

Before a crawl starts, `preflight` checks the source is enabled, not held back by a rate limit
(`not_before`), and has its credentials. A lock file per source keeps two crawls of the same
source from running at once (the lock dies with its process, kill -9 included). When the crawl
ends, the cursor and HTTP validators are saved only if nothing was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from collectors.settings import crawl_settings
from collectors.spiders.base import BrandRules, MentionSpider, SourceSpec
from storage import db as storage_db
from storage.models import Source
from storage.queries import (
    get_brand,
    get_source,
    record_crawl_outcome,
    sync_brands,
    sync_sources,
)
from storage.types import utcnow
from tocsin.config import Secrets, Settings, get_secrets, load_settings

SUMMARY_PREFIX = "TOCSIN-CRAWL-SUMMARY "
DEFAULT_CRAWL_TIMEOUT = 15 * 60  # seconds; a source can set options.crawl_timeout_seconds


@dataclass(slots=True)
class CrawlSummary:
    """How one source's crawl went."""

    source: str
    kind: str = ""
    status: str = "ok"  # ok | partial | rate_limited | deferred | disabled | skipped: ... | failed
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    message: str = ""
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CrawlSummary:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# ---------------------------------------------------------------------- spiders and secrets


def spider_class(kind: str) -> type[MentionSpider]:
    """The spider of a source kind: module `collectors.spiders.<kind>`, spider `name == kind`."""
    if not kind.isidentifier() or kind == "base":
        raise LookupError(f"unknown source kind {kind!r}")
    try:
        module = importlib.import_module(f"collectors.spiders.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"collectors.spiders.{kind}":
            raise LookupError(f"unknown source kind {kind!r}") from None
        raise
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, MentionSpider) and value.name == kind:
            return value
    raise LookupError(f"collectors.spiders.{kind} defines no spider named {kind!r}")


def secret_values(secrets: Secrets, names: Sequence[str]) -> dict[str, str]:
    """The named secrets that are set, as plain strings (never logged)."""
    values = {}
    for name in names:
        value = getattr(secrets, name, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value:
            values[name] = str(value)
    return values


def preflight(
    source: Source,
    spider_cls: type[MentionSpider],
    secrets: Secrets,
    now: datetime,
    *,
    run_disabled: bool = False,
) -> CrawlSummary | None:
    """A summary saying why the source must not run now, or None when it may.

    `run_disabled`: the user named the source, so `enabled = false` (off the schedule) is no bar.
    """
    summary = CrawlSummary(source=source.name, kind=source.kind)
    if not source.enabled and not run_disabled:
        summary.status = "disabled"
        return summary
    if source.not_before is not None and source.not_before > now:
        summary.status = "deferred"
        summary.message = f"rate limited until {source.not_before.isoformat(timespec='seconds')}"
        return summary
    missing = spider_cls.missing_secrets(secret_values(secrets, spider_cls.required_secrets))
    if missing:
        names = ", ".join(f"TOCSIN_{name.upper()}" for name in missing)
        summary.status = "skipped: no credentials"
        summary.message = f"set {names}"
        return summary
    return None


# ---------------------------------------------------------------------- one crawl, in-process


@contextlib.contextmanager
def source_lock(lock_dir: Path, name: str) -> Iterator[bool]:
    """Hold the source's lock file for the block; yields False when another crawl holds it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    handle: IO[str] = open(lock_dir / f"{safe}.lock", "a+")  # noqa: SIM115 (held for the block)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()


def _spec(source: Source, spider_cls: type[MentionSpider], secrets: Secrets) -> SourceSpec:
    brand = None
    if source.brand_id is not None:
        with storage_db.session_scope() as session:
            row = get_brand(session, brand_id=source.brand_id)
            if row is not None:
                brand = BrandRules(
                    name=row.name,
                    id=row.id,
                    keywords=list(row.keywords),
                    handles=list(row.handles),
                    excluded_terms=list(row.excluded_terms),
                )
    return SourceSpec(
        name=source.name,
        kind=source.kind,
        base_url=source.base_url,
        query=source.query,
        options=dict(source.options or {}),
        cursor=dict(source.cursor or {}),
        etag=source.etag,
        last_modified=source.last_modified,
        source_id=source.id,
        brand=brand,
        secrets=secret_values(secrets, spider_cls.required_secrets),
    )


def _run_spider(spider_cls: type[MentionSpider], spec: SourceSpec) -> tuple[MentionSpider, str]:
    from scrapy.crawler import CrawlerProcess

    process = CrawlerProcess({**crawl_settings(spec.options), "LOG_INSTALL_ROOT_HANDLER": True})
    # Scrapy logs every scraped item at DEBUG; building those records costs more than parsing.
    logging.getLogger("scrapy.core.scraper").setLevel(logging.INFO)
    crawler = process.create_crawler(spider_cls)
    process.crawl(crawler, source=spec)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, MentionSpider)
    reason = str(crawler.stats.get_value("finish_reason") or "unknown") if crawler.stats else ""
    return spider, reason


def crawl_source(
    name: str, *, lock_dir: Path, secrets: Secrets | None = None, run_disabled: bool = False
) -> CrawlSummary:
    """Run one crawl of `name` in this process (once per process) and save its outcome."""
    started = time.monotonic()
    secrets = secrets or get_secrets()
    with storage_db.session_scope() as session:
        source = get_source(session, name=name)
    if source is None or source.id is None:
        return CrawlSummary(source=name, status="failed", message="no such source in the database")
    try:
        spider_cls = spider_class(source.kind)
    except LookupError as exc:
        return CrawlSummary(source=name, kind=source.kind, status="failed", message=str(exc))
    refusal = preflight(source, spider_cls, secrets, utcnow(), run_disabled=run_disabled)
    if refusal is not None:
        return refusal
    with source_lock(lock_dir, name) as locked:
        if not locked:
            return CrawlSummary(
                source=name, kind=source.kind, status="busy", message="another crawl is running"
            )
        spider, reason = _run_spider(spider_cls, _spec(source, spider_cls, secrets))
        summary = _save_outcome(source.id, spider, reason)
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _save_outcome(source_id: int, spider: MentionSpider, reason: str) -> CrawlSummary:
    counters = spider.counters
    complete = reason == "finished" and spider.finished_without_loss
    if spider.rate_limited_until is not None:
        status = "rate_limited"
        message = f"stopped until {spider.rate_limited_until.isoformat(timespec='seconds')}"
    elif complete:
        status, message = "ok", ""
    else:
        status = "partial"
        causes = spider.loss_reasons or [f"crawl ended: {reason}"]
        more = f" (+{len(causes) - 1} more)" if len(causes) > 1 else ""
        message = causes[0][:300] + more
    not_before = spider.rate_limited_until or spider.not_before_hint
    with storage_db.session_scope() as session:
        record_crawl_outcome(
            session,
            source_id=source_id,
            finished_at=utcnow(),
            advance=complete,
            cursor=spider.new_cursor,
            etag=spider.new_etag,
            last_modified=spider.new_last_modified,
            not_before=not_before,
            error=None if complete else message,
        )
    return CrawlSummary(
        source=spider.source.name,
        kind=spider.source.kind,
        status=status,
        new=counters["new"],
        updated=counters["updated"],
        skipped=counters["skipped"],
        errors=counters["errors"],
        message=message,
    )


# ---------------------------------------------------------------------- many crawls, subprocesses


def _database_url(settings: Settings) -> str:
    """The settings' database, which this process's engine is pointed at if it was elsewhere.

    (Re-pointing only on a change: the service calls this from several threads at once.)
    """
    current = storage_db.database_url()
    if settings.database_url and settings.database_url != current:
        storage_db.configure(settings.database_url)
        return settings.database_url
    return current


def sync_from_settings(settings: Settings) -> list[Source]:
    """Brands and sources from the settings into the database (state kept)."""
    with storage_db.session_scope() as session:
        brand_ids = sync_brands(session, brands=settings.brands)
        return sync_sources(session, sources=settings.sources, brand_ids=brand_ids)


def run_crawls(
    names: list[str] | None = None,
    *,
    settings: Settings,
    on_start: Callable[[str, int, int], None] | None = None,
) -> list[CrawlSummary]:
    """Run each named (default: each enabled) source's crawl in its own subprocess, in turn.

    `on_start(name, index, total)` is called before each source (progress display). Raises
    LookupError naming any source that is not in the settings.
    """
    url = _database_url(settings)
    configured = {s.name: s for s in settings.sources}
    if names:
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise LookupError(f"unknown source(s): {', '.join(unknown)}")
        wanted = list(dict.fromkeys(names))
    else:
        wanted = [s.name for s in settings.sources if s.enabled]
    rows = {row.name: row for row in sync_from_settings(settings)}
    secrets = get_secrets()
    log_dir = settings.data_dir / "logs"
    summaries = []
    named = bool(names)
    for index, name in enumerate(wanted):
        if on_start is not None:
            on_start(name, index, len(wanted))
        row = rows[name]
        try:
            refusal = preflight(row, spider_class(row.kind), secrets, utcnow(), run_disabled=named)
        except LookupError as exc:
            refusal = CrawlSummary(source=name, kind=row.kind, status="failed", message=str(exc))
        summaries.append(
            refusal or run_crawl_subprocess(name, settings=settings, url=url, run_disabled=named)
        )
        if summaries[-1].status not in ("ok", "deferred", "disabled", "busy"):
            _log_to(log_dir, summaries[-1])
    return summaries


def run_crawl_subprocess(
    name: str,
    *,
    settings: Settings,
    url: str,
    timeout: float | None = None,
    run_disabled: bool = False,
) -> CrawlSummary:
    """`python -m collectors.crawl --source NAME` in a child process; its summary."""
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    option_timeout = next(
        (s.options.get("crawl_timeout_seconds") for s in settings.sources if s.name == name), None
    )
    limit = timeout or float(option_timeout or DEFAULT_CRAWL_TIMEOUT)
    command = crawl_command(name, url=url, lock_dir=settings.data_dir / "locks")
    if run_disabled:
        command.append("--even-if-disabled")
    started = time.monotonic()
    with open(log_dir / f"crawl-{_safe(name)}.log", "w", encoding="utf-8") as log:
        try:
            done = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=log, text=True, timeout=limit, check=False
            )
        except subprocess.TimeoutExpired:
            return CrawlSummary(
                source=name, status="failed", message=f"crawl ran past {limit:.0f}s and was stopped"
            )
    summary = parse_summary(done.stdout)
    if summary is None:
        return CrawlSummary(
            source=name,
            status="failed",
            message=f"crawl process exited {done.returncode}; see {log_dir / f'crawl-{name}.log'}",
            seconds=round(time.monotonic() - started, 2),
        )
    return summary


def crawl_command(name: str, *, url: str, lock_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "collectors.crawl",
        "--source",
        name,
        "--database",
        url,
        "--lock-dir",
        str(lock_dir),
    ]


def parse_summary(stdout: str) -> CrawlSummary | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                return CrawlSummary.from_json(line.removeprefix(SUMMARY_PREFIX))
            except (ValueError, TypeError):
                return None
    return None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _log_to(log_dir: Path, summary: CrawlSummary) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "collect.log", "a", encoding="utf-8") as log:
        log.write(f"{utcnow().isoformat()} {summary.to_json()}\n")


# ---------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.crawl", description=__doc__)
    parser.add_argument("--source", required=True, help="the source's name in tocsin.toml")
    parser.add_argument("--database", help="database URL (default: from the settings)")
    parser.add_argument("--lock-dir", type=Path, help="where per-source lock files live")
    parser.add_argument(
        "--even-if-disabled", action="store_true", help="run a source whose enabled = false"
    )
    args = parser.parse_args(argv)
    settings: Any = None
    if args.database is None or args.lock_dir is None:
        settings = load_settings()
    storage_db.configure(args.database or settings.resolved_database_url)
    lock_dir = args.lock_dir or settings.data_dir / "locks"
    try:
        summary = crawl_source(args.source, lock_dir=lock_dir, run_disabled=args.even_if_disabled)
    except Exception as exc:  # the parent must always get a summary line
        summary = CrawlSummary(
            source=args.source, status="failed", message=f"{type(exc).__name__}: {exc}"
        )
        print(f"crawl of {args.source} failed: {exc!r}", file=sys.stderr)
    sys.stdout.write(SUMMARY_PREFIX + summary.to_json() + "\n")
    sys.stdout.flush()
    return 0 if summary.status != "failed" else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
