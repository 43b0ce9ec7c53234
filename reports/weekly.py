"""Build a brand's weekly reputation report (HTML + PDF, a ReportRun row) and send it.

build_report(session, brand=..., week="2026-W47", settings=..., out_dir=...) -> ReportRun
send_due_reports(settings=..., now=...)   # the scheduler's weekly job
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session

from reports.figures import WeekFigures, week_figures
from reports.mail import send_report_email
from reports.period import Week, last_complete_week
from reports.render import pdf_available, render_html, write_pdf
from storage import queries
from storage.db import session_scope
from storage.models import ReportRun
from storage.types import utcnow
from tocsin.config import Settings
from tocsin.errors import UserError

log = logging.getLogger("tocsin.reports")


@dataclass(slots=True)
class BuiltReport:
    run: ReportRun
    figures: WeekFigures
    html_path: Path
    pdf_path: Path | None


def reports_dir(settings: Settings) -> Path:
    return settings.reports.out_dir or settings.data_dir / "reports"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "brand"


def compute_figures(
    session: Session, *, brand: str, week: str, settings: Settings, now: datetime | None = None
) -> WeekFigures:
    tz = ZoneInfo(settings.timezone)
    period = Week.parse(week, tz)
    row = queries.brand_by_name(session, name=brand)
    if row is None or row.id is None:
        known = ", ".join(b.name for b in settings.brands) or "none configured"
        raise UserError(f"no brand {brand!r} in the database (brands: {known})")
    previous = period.previous()
    config = settings.brand(brand)
    terms = [*row.keywords, *row.handles, brand, *(config.keywords if config else [])]
    return week_figures(
        brand=brand,
        brand_terms=terms,
        week=period,
        mentions=queries.report_mentions(
            session, brand_id=row.id, start=period.start, end=period.end
        ),
        previous=queries.report_mentions(
            session, brand_id=row.id, start=previous.start, end=previous.end
        ),
        cases=queries.report_cases(session, brand_id=row.id, start=period.start, end=period.end),
        incidents=queries.report_incidents(
            session, brand_id=row.id, start=period.start, end=period.end
        ),
        alerts=queries.report_alerts_sent(
            session, brand_id=row.id, start=period.start, end=period.end
        ),
        now=now or utcnow(),
        top_posts=settings.reports.top_posts,
        themes=settings.reports.themes,
    )


def write_files(
    figures: WeekFigures, *, out_dir: Path, pdf: bool = True
) -> tuple[Path, Path | None]:
    """The HTML page and (unless `pdf` is False) its PDF; needs no database."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_slug(figures.brand)}-{figures.week}"
    html = render_html(figures)
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path: Path | None = None
    if pdf:
        pdf_path = out_dir / f"{stem}.pdf"
        write_pdf(html, pdf_path)
    return html_path, pdf_path


def record(
    session: Session, figures: WeekFigures, html_path: Path, pdf_path: Path | None
) -> BuiltReport:
    brand_row = queries.brand_by_name(session, name=figures.brand)
    assert brand_row is not None and brand_row.id is not None
    run = queries.save_report_run(
        session,
        brand_id=brand_row.id,
        week=figures.week,
        html_path=str(html_path.resolve()),
        pdf_path=str(pdf_path.resolve()) if pdf_path else None,
        figures=figures.stored(),
    )
    return BuiltReport(run=run, figures=figures, html_path=html_path, pdf_path=pdf_path)


def build(
    session: Session,
    *,
    brand: str,
    week: str,
    settings: Settings,
    out_dir: Path,
    now: datetime | None = None,
    pdf: bool = True,
) -> BuiltReport:
    """Figures, HTML and (unless `pdf` is False) PDF; records the ReportRun."""
    figures = compute_figures(session, brand=brand, week=week, settings=settings, now=now)
    html_path, pdf_path = write_files(figures, out_dir=out_dir, pdf=pdf)
    return record(session, figures, html_path, pdf_path)


def build_detached(
    *, brand: str, week: str, settings: Settings, now: datetime | None = None, pdf: bool = True
) -> BuiltReport:
    """`build` in two short transactions, the charts and PDF drawn between them: on SQLite a
    transaction holds the write lock, and the other jobs should not wait for the drawing."""
    with session_scope() as session:
        figures = compute_figures(session, brand=brand, week=week, settings=settings, now=now)
    html_path, pdf_path = write_files(figures, out_dir=reports_dir(settings), pdf=pdf)
    with session_scope() as session:
        return record(session, figures, html_path, pdf_path)


def build_report(
    session: Session, *, brand: str, week: str, settings: Settings, out_dir: Path
) -> ReportRun:
    """The contract entry point: HTML + PDF written to `out_dir`, the ReportRun returned."""
    return build(session, brand=brand, week=week, settings=settings, out_dir=out_dir).run


def send(built: BuiltReport, *, settings: Settings, readers: list[str] | None = None) -> None:
    """Email the report to the readers and record when it went out."""
    attachment = built.pdf_path or built.html_path
    send_report_email(
        built.figures,
        attachment=attachment,
        settings=settings,
        readers=list(readers if readers is not None else settings.reports.readers),
    )
    assert built.run.id is not None
    with session_scope() as session:
        queries.mark_report_sent(session, report_id=built.run.id)
    built.run.sent_at = utcnow()


def send_due_reports(
    *, settings: Settings, now: datetime | None = None, force: bool = False
) -> list[str]:
    """The weekly job: for each brand, the last complete week's report, built and sent unless it
    already went out (a restart or a second host never sends it twice; `force` does).

    A failed send leaves the report unsent and raises, so the job is retried."""
    moment = now or utcnow()
    week = str(last_complete_week(moment, ZoneInfo(settings.timezone)))
    readers = settings.reports.readers
    done: list[str] = []
    failures: list[str] = []
    for brand in settings.brands:
        with session_scope() as session:
            row = queries.brand_by_name(session, name=brand.name)
            if row is None or row.id is None:
                done.append(f"{brand.name}: not in the database yet")
                continue
            existing = queries.report_run_for(session, brand_id=row.id, week=week)
            if existing is not None and not force and (existing.sent_at or not readers):
                continue
        built = build_detached(
            brand=brand.name, week=week, settings=settings, now=moment, pdf=pdf_available()
        )
        if not readers:
            done.append(f"{brand.name} {week}: built (no readers configured)")
            continue
        try:
            send(built, settings=settings)
        except Exception as exc:
            log.warning("report %s %s not sent: %s", brand.name, week, exc)
            failures.append(f"{brand.name}: {exc}")
            continue
        done.append(f"{brand.name} {week}: sent to {len(readers)} readers")
    if failures:
        raise RuntimeError("; ".join(failures))
    return done
