"""Cron jobs' schedules: cron lines become OnCalendar expressions of the same minutes, systemd
calendar expressions are kept after a shape check. Where `systemd-analyze` exists (Linux), the
converted expressions are run through it and their next elapses compared with an independent
reading of the cron line."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightfold.detect.schedule import on_calendar

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
BASE = dt.datetime(2026, 1, 1, 0, 0)


@pytest.mark.parametrize(("cron", "calendar"), [
    ("*/5 * * * *", "*-*-* *:00/5:00"),
    ("* * * * *", "*-*-* *:*:00"),
    ("0 * * * *", "*-*-* *:00:00"),
    ("30 4 * * *", "*-*-* 04:30:00"),
    ("0 4 * * mon-fri", "Mon..Fri *-*-* 04:00:00"),
    ("0 4 * * 1-5", "Mon..Fri *-*-* 04:00:00"),
    ("0 0 * * 0", "Sun *-*-* 00:00:00"),
    ("0 0 * * 7", "Sun *-*-* 00:00:00"),
    ("0 0 * * 5-7", "Fri..Sun *-*-* 00:00:00"),
    ("0 0 * * sat,sun", "Sat,Sun *-*-* 00:00:00"),
    ("0 9-17 * * 1-3,5", "Mon..Wed,Fri *-*-* 09..17:00:00"),
    ("15,45 */2 1-10 * *", "*-*-01..10 00/2:15/30:00"),
    ("0 0 1 jan,jul *", "*-01/6-01 00:00:00"),
    ("0 0 1 */3 *", "*-01/3-01 00:00:00"),
    ("0 0 */2 * *", "*-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 00:00:00"),
    ("5/15 * * * *", "*-*-* *:05/15:00"),
    ("0-30/10 * * * *", "*-*-* *:00,10,20,30:00"),
    ("1,2 * * * *", "*-*-* *:01,02:00"),
    ("0 0 1 * *", "*-*-01 00:00:00"),
    ("0 0 * * */2", "Tue,Thu,Sat,Sun *-*-* 00:00:00"),
    ("  0   4 *  * MON ", "Mon *-*-* 04:00:00"),
    ("0 12 * DEC *", "*-12-* 12:00:00"),
    ("@hourly", "*-*-* *:00:00"),
    ("@daily", "*-*-* 00:00:00"),
    ("@midnight", "*-*-* 00:00:00"),
    ("@weekly", "Sun *-*-* 00:00:00"),
    ("@monthly", "*-*-01 00:00:00"),
    ("@yearly", "*-01-01 00:00:00"),
    ("@annually", "*-01-01 00:00:00"),
    ("@DAILY", "*-*-* 00:00:00"),
])
def test_cron_lines_convert_to_calendar_expressions(cron, calendar):
    assert on_calendar(cron) == calendar


@pytest.mark.parametrize("calendar", [
    "*:0/5", "Mon..Fri 04:00", "daily", "hourly", "weekly", "*-*-01 03:00:00 UTC", "Mon", "Sat,Sun 10:00",
    "2026-*-* 4:0", "*-02~03", "*-*-* 10:00:00.5", "*-*-* 00..23/2:00:00", "monday 10:00",
    "*-*-* 10:00 Europe/Berlin", "*-*-* *:00/15", "Mon,Wed *-*-* 12:00:00",
])
def test_systemd_calendar_expressions_are_kept(calendar):
    assert on_calendar(calendar) == calendar
    assert on_calendar(f"  {calendar}  ") == calendar


@pytest.mark.parametrize(("text", "says"), [
    ("0 0 1 * 1", "either one"),  # cron's OR of day of month and weekday
    ("@reboot", "a process"),
    ("@often", "unknown cron macro"),
    ("61 * * * *", "'61' is not 0-59"),
    ("* 24 * * *", "'24' is not 0-23"),
    ("* * 0 * *", "'0' is not 1-31"),
    ("* * * 13 *", "'13' is not 1-12"),
    ("* * * * 8", "'8' is not 0-7"),
    ("* * * foo *", "'foo' is not 1-12 or a name"),
    ("*/0 * * * *", "from 1 up"),
    ("*/x * * * *", "from 1 up"),
    ("5-1 * * * *", "runs backwards"),
    (",5 * * * *", "is not 0-59"),
    ("* * * * * *", "has 6 fields"),
    ("* * * *", "is not a schedule"),
    ("bad thing", "'bad' is not a weekday"),
    ("Funday 10:00", "not a weekday"),
    ("*-*-* 25:00", "25 is out of range for the hour"),
    ("*-*-* 10:61", "61 is out of range for the minute"),
    ("*-13-01", "13 is out of range for the month"),
    ("*-01-32", "32 is out of range for the day"),
    ("Mon %n", "characters"),
    ("daily\nExecStart=/bin/sh", "characters"),
    ("", "must be"),
    ("   ", "must be"),
    ("10:00 Mon", "is not a schedule"),
    ("UTC", "not a weekday"),
])
def test_bad_schedules_are_refused_with_the_reason(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        on_calendar(text)


def test_a_non_string_is_refused():
    with pytest.raises(ValueError, match="must be"):
        on_calendar(5)


# -- the conversion against systemd itself ---------------------------------------------------------

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def cron_field(draw, lo: int, hi: int, names: list[str] | None = None, star_ok: bool = True):
    """(text, the values it allows) built side by side, independently of the code under test."""
    def value_text(v: int) -> str:
        if names and v <= lo + len(names) - 1 and draw(st.booleans()):  # 7 (Sunday again) has no name
            return (names[(v - lo) % len(names)]).upper() if draw(st.booleans()) else names[(v - lo) % len(names)]
        return str(v)

    items, values = [], set()
    kinds = ["star", "single", "range", "step", "range_step"] if star_ok else ["single", "range", "range_step"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        top = 6 if names is DAYS else hi  # '*' in the weekday field is 0-6; 7 is an alias
        if kind == "star":
            step = draw(st.integers(1, hi - lo + 2))
            items.append("*" if step == 1 and draw(st.booleans()) else f"*/{step}")
            values |= set(range(lo, top + 1, step))
        elif kind == "single":
            v = draw(st.integers(lo, hi))
            items.append(value_text(v))
            values.add(v)
        else:
            a = draw(st.integers(lo, hi))
            b = draw(st.integers(a, hi))
            step = draw(st.integers(1, 12)) if kind == "range_step" else 1
            items.append(f"{value_text(a)}-{value_text(b)}" + (f"/{step}" if kind == "range_step" else ""))
            values |= set(range(a, b + 1, step))
        if kind == "star" and not star_ok:
            break
    if names is DAYS and 7 in values:
        values = (values - {7}) | {0}
    return ",".join(items), values


@st.composite
def cron_lines(draw):
    minute = draw(cron_field(0, 59))
    hour = draw(cron_field(0, 23))
    month = draw(cron_field(1, 12, MONTHS))
    # Cron ORs a restricted day of month with a restricted weekday; those lines are refused (tested
    # above), so at least one of the two starts with '*'.
    dom_star = draw(st.booleans())
    if dom_star:
        dom = ("*", set(range(1, 32))) if draw(st.booleans()) else (f"*/{draw(st.integers(1, 15))}", None)
        if dom[1] is None:
            step = int(dom[0][2:])
            dom = (dom[0], set(range(1, 32, step)))
        dow = draw(cron_field(0, 7, DAYS))
    else:
        dom = draw(cron_field(1, 31))
        dow = ("*", set(range(7)))
    texts = [minute[0], hour[0], dom[0], month[0], dow[0]]
    return " ".join(texts), (minute[1], hour[1], dom[1], month[1], dow[1])


def expected_runs(sets, count: int, years: int = 30) -> list[str]:
    """The first `count` minutes after BASE that the cron fields allow (cron's AND of the days)."""
    minutes, hours, days, months, weekdays = sets
    out = []
    day = BASE.date()
    for _ in range(366 * years):
        if day.month in months and day.day in days and (day.isoweekday() % 7) in weekdays:
            for h in sorted(hours):
                for m in sorted(minutes):
                    at = dt.datetime(day.year, day.month, day.day, h, m)
                    if at > BASE:
                        out.append(at.strftime("%Y-%m-%d %H:%M:%S"))
                        if len(out) == count:
                            return out
        day += dt.timedelta(days=1)
    return out


def systemd_runs(calendar: str, count: int) -> list[str]:
    proc = subprocess.run(
        [ANALYZE, "calendar", f"--iterations={count}", f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", calendar],
        capture_output=True, text=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", proc.stdout)


@needs_analyze
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron_lines())
def test_converted_cron_lines_elapse_when_cron_would_run_them(line):
    text, sets = line
    calendar = on_calendar(text)
    assert systemd_runs(calendar, 4) == expected_runs(sets, 4), (text, calendar)


@needs_analyze
@pytest.mark.parametrize("line", ["*/2 0 */7 */11,1 */5", "0 3 */7 * *", "30 4 1-30/10 * *"])
def test_stepped_days_of_month_elapse_across_a_years_end(line):
    """Days are spelled out, never '01/7': systemd 252 skips 2027-01-01 for '*-*-01/7' from late
    December (hypothesis found '*/2 0 */7 */11,1 */5')."""
    calendar = on_calendar(line)
    assert "/" not in calendar.split()[-2].split("-")[-1], calendar
    base = "2026-12-30 00:00:00"
    proc = subprocess.run([ANALYZE, "calendar", "--iterations=1", f"--base-time={base} UTC", calendar],
                          capture_output=True, text=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}, timeout=30)
    first = re.findall(r"Next elapse: \w+ (\d{4}-\d\d-\d\d)", proc.stdout)
    assert first == ["2027-01-01"], (calendar, proc.stdout)


@needs_analyze
@pytest.mark.parametrize("macro", ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"])
def test_macros_elapse_like_their_cron_lines(macro):
    line = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *",
            "@yearly": "0 0 1 1 *"}[macro]
    assert systemd_runs(on_calendar(macro), 3) == systemd_runs(on_calendar(line), 3)


@needs_analyze
@pytest.mark.parametrize("calendar", [
    "*:0/5", "Mon..Fri 04:00", "daily", "*-*-01 03:00:00 UTC", "Mon", "Sat,Sun 10:00", "2026-*-* 4:0",
    "*-02~03", "*-*-* 00..23/2:00:00", "monday 10:00",
])
def test_kept_calendar_expressions_are_ones_systemd_reads(calendar):
    assert systemd_runs(on_calendar(calendar), 1)
