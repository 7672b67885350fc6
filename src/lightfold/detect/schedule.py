"""Schedules of cron jobs (lightfold.toml `[cron.<name>] schedule`): `on_calendar(text)` gives the
systemd OnCalendar expression a timer runs on, or raises ValueError saying what is wrong.

Two syntaxes are accepted:
- a systemd calendar expression (`*:0/5`, `Mon..Fri 04:00`, `daily`, `*-*-01 03:00:00 UTC`): kept
  as written (whitespace normalised) after a check of its shape — weekday names, the date and
  time components and their ranges — since `systemd-analyze calendar` is not on the laptop;
- a 5-field cron line (`*/5 * * * *`, `0 4 * * mon-fri`, lists, ranges, steps, month and day
  names, 0 or 7 for Sunday) or a cron macro (@hourly, @daily/@midnight, @weekly, @monthly,
  @yearly/@annually): converted to the OnCalendar expression of the same minutes.

Cron runs a job whose day-of-month AND day-of-week fields are both restricted (neither starts
with '*') when EITHER matches; one OnCalendar expression cannot say "either", so such a line is
refused with the fix (two jobs). Everything else converts exactly: `tests/unit/detect/
test_schedule.py` checks the conversion against `systemd-analyze calendar` where it exists.

Both the cron times and the timer's are the server's local time (UTC on lightfold's servers)
unless the systemd expression names a time zone.
"""

from __future__ import annotations

import re

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's 0..6 (7 is Sunday too)
SYSTEMD_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MACROS = {
    "@yearly": "*-01-01 00:00:00",
    "@annually": "*-01-01 00:00:00",
    "@monthly": "*-*-01 00:00:00",
    "@weekly": "Sun *-*-* 00:00:00",  # cron's week starts on Sunday (systemd's `weekly` is Monday)
    "@daily": "*-*-* 00:00:00",
    "@midnight": "*-*-* 00:00:00",
    "@hourly": "*-*-* *:00:00",
}
SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly",
              "semiannually")
# What may appear at all: the expression lands in a unit file, where '%' is a specifier and a
# newline starts another setting.
CHARS = re.compile(r"[A-Za-z0-9*/,.:~ _+-]+", re.ASCII)
EXAMPLES = "a systemd calendar such as '*:0/5' or 'Mon..Fri 04:00', or a cron line such as '*/5 * * * *'"


def on_calendar(text: object) -> str:
    """The OnCalendar expression for `text` (systemd calendar or cron syntax)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a schedule must be {EXAMPLES}")
    spec = " ".join(text.split())
    if spec.startswith("@"):
        if spec.lower() not in MACROS:
            raise ValueError(f"unknown cron macro {spec!r}: use one of {', '.join(MACROS)}"
                             + (" (a job at boot is a process, not a cron job)" if spec == "@reboot" else ""))
        return MACROS[spec.lower()]
    if not CHARS.fullmatch(spec):
        raise ValueError(f"{text!r} holds characters no schedule has: write {EXAMPLES}")
    fields = spec.split(" ")
    if len(fields) == 5 and not any(":" in f for f in fields):
        return cron_to_calendar(fields)
    if len(fields) in (6, 7) and not any(":" in f for f in fields):
        raise ValueError(f"{text!r} has {len(fields)} fields: cron lines have 5 (minute hour day month weekday), "
                         "without seconds, year or a user name")
    check_calendar(fields)
    return spec


# -- cron ------------------------------------------------------------------------------------------

# (name, lowest, highest, names of the values from `lowest` on)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, CRON_DAYS),
)


def cron_fields(fields: list[str]) -> list[set[int]]:
    """The values each of the five cron fields allows (day of week: 0..6, Sunday 0)."""
    sets = [_cron_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]
    if 7 in sets[4]:
        sets[4] = (sets[4] - {7}) | {0}
    return sets


def cron_to_calendar(fields: list[str]) -> str:
    minutes, hours, days, months, weekdays = cron_fields(fields)
    if not fields[2].startswith(("*", "?")) and not fields[4].startswith(("*", "?")):
        raise ValueError(
            f"'{' '.join(fields)}' restricts both the day of month and the weekday, which cron reads as "
            "'either one': a systemd timer cannot say that in one schedule — make two jobs, one with "
            "the day of month and '*' for the weekday, one the other way round")
    dow = "" if len(weekdays) == 7 else _weekdays(weekdays) + " "
    return (f"{dow}*-{_numbers(months, 1, 12)}-{_numbers(days, 1, 31, repeat=False)} "
            f"{_numbers(hours, 0, 23)}:{_numbers(minutes, 0, 59)}:00")


def _cron_field(text: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"the {name} field {text!r}: the step after '/' must be a whole number from 1 up")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = lo, (6 if name == "day of week" else hi)
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _cron_value(first, text, name, lo, hi, names), _cron_value(last, text, name, lo, hi, names)
            if start > end:
                raise ValueError(f"the {name} field {text!r}: the range {base} runs backwards")
        else:
            start = _cron_value(base, text, name, lo, hi, names)
            end = hi if slash else start
        values.update(range(start, end + 1, step))
    return values


def _cron_value(token: str, text: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if token.isdigit() and lo <= int(token) <= hi:
        return int(token)
    if token.lower() in names:
        return names.index(token.lower()) + lo
    what = f"{lo}-{hi}" + (f" or a name ({names[0]}, {names[1]}, ...)" if names else "")
    raise ValueError(f"the {name} field {text!r}: {token!r} is not {what}")


def _numbers(values: set[int], lo: int, hi: int, repeat: bool = True) -> str:
    """One OnCalendar component: '*', '05', '00/15' (from 0 every 15), '01..05' or a list.
    `repeat=False` spells a step out as its list: systemd 252 (Debian 12) misses days of a
    repeated day of month after a year's end ('*-*-01/7' from 2026-12-30 elapses on 2027-01-08,
    not 01-01), so days are never written with '/'."""
    ordered = sorted(values)
    if len(ordered) == hi - lo + 1:
        return "*"
    if len(ordered) == 1:
        return f"{ordered[0]:02d}"
    step = ordered[1] - ordered[0]
    if repeat and step > 1 and ordered == list(range(ordered[0], hi + 1, step)):
        return f"{ordered[0]:02d}/{step}"
    return ",".join(f"{a:02d}" if a == b else f"{a:02d}..{b:02d}" for a, b in _runs(ordered))


def _weekdays(values: set[int]) -> str:
    monday_first = sorted((v + 6) % 7 for v in values)  # cron 1 (Monday) -> 0 ... cron 0 (Sunday) -> 6
    return ",".join(SYSTEMD_DAYS[a] if a == b else f"{SYSTEMD_DAYS[a]}..{SYSTEMD_DAYS[b]}"
                    for a, b in _runs(monday_first))


def _runs(ordered: list[int]) -> list[tuple[int, int]]:
    """Consecutive values as (first, last); a run of two stays two single values."""
    runs: list[list[int]] = []
    for v in ordered:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    out: list[tuple[int, int]] = []
    for a, b in runs:
        out.extend([(a, a), (b, b)] if b == a + 1 else [(a, b)])
    return out


# -- systemd calendar expressions (shape only) -----------------------------------------------------

_NUM = r"\d+(?:\.\.\d+)?(?:/\d+)?"
_PART = rf"(?:\*(?:/\d+)?|{_NUM}(?:,{_NUM})*)"
_DATE = re.compile(rf"(?:(?P<y>{_PART})-)?(?P<m>{_PART})(?P<sep>[-~])(?P<d>{_PART})", re.ASCII)
_TIME = re.compile(rf"(?P<h>{_PART}):(?P<min>{_PART})(?::(?P<s>{_PART}(?:\.\d+)?))?", re.ASCII)
_ZONE = re.compile(r"UTC|[A-Z][A-Za-z_+-]*(?:/[A-Za-z0-9_+-]+){0,2}", re.ASCII)
_DAY_NAMES = {d.lower() for d in SYSTEMD_DAYS} | set(FULL_DAYS)


def check_calendar(tokens: list[str]) -> None:
    """Refuse what is not shaped like `[weekdays] [[year-]month-day] [hour:minute[:second]] [zone]`
    (or a shorthand such as `daily`), or has a number out of its range."""
    spec = " ".join(tokens)
    if len(tokens) == 1 and tokens[0].lower() in SHORTHANDS:
        return
    rest = list(tokens)
    if rest and re.fullmatch(r"[A-Za-z]+(?:(?:,|\.\.)[A-Za-z]+)*", rest[0]) and rest[0].lower() not in SHORTHANDS:
        names = re.split(r",|\.\.", rest.pop(0))
        bad = [n for n in names if n.lower() not in _DAY_NAMES]
        if bad:
            raise ValueError(f"{spec!r}: {bad[0]!r} is not a weekday (Mon, Tue, ... Sun)")
    if rest and (m := _DATE.fullmatch(rest[0])):
        rest.pop(0)
        _in_range(spec, m.group("m"), 1, 12, "month")
        _in_range(spec, m.group("d"), 1, 31, "day")
    if rest and (m := _TIME.fullmatch(rest[0])):
        rest.pop(0)
        _in_range(spec, m.group("h"), 0, 23, "hour")
        _in_range(spec, m.group("min"), 0, 59, "minute")
        _in_range(spec, (m.group("s") or "0").split(".")[0], 0, 59, "second")
    consumed = len(tokens) - len(rest)
    if rest and consumed and _ZONE.fullmatch(rest[0]) and rest[0].lower() not in _DAY_NAMES:
        rest.pop(0)
    if rest or not consumed:
        raise ValueError(f"{spec!r} is not a schedule: write {EXAMPLES}")


def _in_range(spec: str, part: str, lo: int, hi: int, what: str) -> None:
    for number in re.findall(r"(?<![/\d])\d+", part):
        if not lo <= int(number) <= hi:
            raise ValueError(f"{spec!r}: {number} is out of range for the {what} ({lo}-{hi})")
