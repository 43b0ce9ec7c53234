"""ISO weeks in the configured time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tocsin.errors import UserError

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class Week:
    year: int
    number: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> Week:
        match = WEEK.match(text.strip())
        if not match:
            raise UserError(f"week {text!r}: write it as an ISO week, e.g. 2026-W47")
        year, number = int(match[1]), int(match[2])
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise UserError(f"week {text!r}: {year} has no week {number}") from None
        return cls(year, number, tz)

    @classmethod
    def containing(cls, day: date, tz: ZoneInfo) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number, tz)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=i) for i in range(7)]

    @property
    def start(self) -> datetime:
        """Monday 00:00 local time, as an aware datetime."""
        return datetime.combine(self.monday, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.monday + timedelta(days=7), time(0), tzinfo=self.tz)

    def previous(self) -> Week:
        return Week.containing(self.monday - timedelta(days=7), self.tz)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


def last_complete_week(moment: datetime, tz: ZoneInfo) -> Week:
    """The ISO week that ended before the local week of `moment` began."""
    local = moment.astimezone(tz).date()
    return Week.containing(local - timedelta(days=local.weekday() + 1), tz)
