"""Indian exchange calendar: trading days, sessions, market phase, AMO windows (IST).

Hours, holidays and special sessions (Budget days, Muhurat trading) are data, in
``copytrade/lib/data/holidays.toml``, with a cited source per year. The functions are pure:
they take ``now`` (an aware datetime) and the round-the-clock switch explicitly, so tests are
deterministic at any wall-clock time. The copier passes ``clock.now()`` and
``round_the_clock=round_the_clock_from_settings()``.

Exchanges: NSE, BSE (cash; pre-open 09:00-09:15, orders accepted until 09:08), NFO, BFO
(09:15-15:30), CDS, BCD (currency, 09:00-17:00) and MCX (09:00 until 23:30 while the US
observes daylight saving time, 23:55 otherwise; on many exchange holidays only the morning
or only the evening session runs).

Session boundaries: a session is open from its start (inclusive) to its end (exclusive):
NSE is open at 09:15:00 and closed at 15:30:00.

Round the clock (``TRADING_ROUND_THE_CLOCK``, for the sandbox and tests): every exchange is
open all day every day, with reason ``round_the_clock``.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any

from copytrade.lib.clock import IST

__all__ = [
    "EXCHANGES",
    "Holiday",
    "MarketStatus",
    "Phase",
    "PhaseReason",
    "Session",
    "amo_accepted",
    "day_end",
    "holiday_on",
    "holidays_known",
    "is_open",
    "is_trading_day",
    "market_phase",
    "mcx_close_time",
    "next_open",
    "round_the_clock_from_settings",
    "session_end",
    "sessions",
    "trading_day",
    "us_dst_in_effect",
]

EXCHANGES: tuple[str, ...] = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")
_SEGMENTS = ("equity", "currency", "commodity")
_MCX_PATTERNS = ("closed", "evening_only", "morning_only")
_SEARCH_DAYS = 400


class Phase(StrEnum):
    PRE_OPEN = "pre_open"
    OPEN = "open"
    CLOSED = "closed"


class PhaseReason(StrEnum):
    OPEN = "open"
    PRE_OPEN = "pre_open"
    ROUND_THE_CLOCK = "round_the_clock"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    BEFORE_OPEN = "before_open"
    AFTER_CLOSE = "after_close"
    BETWEEN_SESSIONS = "between_sessions"


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session of one exchange on one day (aware IST datetimes)."""

    start: datetime
    end: datetime
    #: Start of the pre-open session before ``start`` (NSE/BSE cash), else None.
    pre_open: datetime | None
    #: End of pre-open order entry (orders accepted from ``pre_open`` until this), else None.
    order_entry_end: datetime | None
    #: "regular", "morning", "evening", "round_the_clock", or a special session's name.
    name: str
    special: bool = False


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str
    #: Equity (and currency) segment closed all day.
    equity: bool
    #: MCX pattern: "closed", "evening_only", "morning_only", or None (MCX trades normally).
    mcx: str | None
    #: Not from a published exchange list (a fixed-date holiday of an unpublished year).
    provisional: bool


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """The state of one exchange at one instant, with the reason in words."""

    exchange: str
    at: datetime
    phase: Phase
    reason: PhaseReason
    #: A sentence for people: "Closed for Holi", "Opens at 09:15 IST", "Open until 15:30 IST".
    detail: str
    #: The holiday affecting this exchange today (also for MCX half-days), else None.
    holiday: str | None
    #: The session we are in (OPEN / PRE_OPEN), else None.
    session: Session | None
    #: When the market next opens (``at`` itself while open); None if none is known.
    next_open: datetime | None

    @property
    def is_open(self) -> bool:
        return self.phase is Phase.OPEN

    @property
    def accepts_orders(self) -> bool:
        """True while open, and during pre-open order entry (NSE/BSE 09:00-09:08)."""
        if self.phase is Phase.OPEN:
            return True
        if self.phase is Phase.PRE_OPEN and self.session is not None:
            entry_end = self.session.order_entry_end
            return entry_end is not None and self.at < entry_end
        return False


# --- Data --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Hours:
    segment: str
    open: time
    close: time
    pre_open: time | None
    order_entry_end: time | None
    evening_open: time | None
    close_outside_us_dst: time | None
    amo_from: time | None  # None = any time
    amo_until: time | None


@dataclass(frozen=True, slots=True)
class _Special:
    day: date
    name: str
    exchanges: frozenset[str]
    open: time
    close: time
    pre_open: time | None
    order_entry_end: time | None


@dataclass(frozen=True, slots=True, eq=False)
class CalendarData:
    hours: Mapping[str, _Hours]
    holidays: Mapping[date, Holiday]
    specials: Mapping[tuple[str, date], tuple[_Special, ...]]
    #: (segment, year) -> "official" | "provisional"
    years: Mapping[tuple[str, int], str]


class CalendarDataError(ValueError):
    """The bundled calendar data is malformed (a bug in the data file, caught at load)."""


def _parse_time(value: object, where: str) -> time:
    if not isinstance(value, str):
        raise CalendarDataError(f"{where}: expected a time string like '09:15', got {value!r}")
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise CalendarDataError(f"{where}: bad time {value!r}") from exc


def _opt_time(table: Mapping[str, Any], key: str, where: str) -> time | None:
    return _parse_time(table[key], f"{where}.{key}") if key in table else None


def parse_calendar_data(text: str) -> CalendarData:
    """Parse and validate calendar TOML (the bundled file, or a test's own)."""
    raw = tomllib.loads(text)
    if raw.get("schema") != 1:
        raise CalendarDataError("unsupported schema (expected schema = 1)")

    hours: dict[str, _Hours] = {}
    for exchange, table in raw.get("exchanges", {}).items():
        where = f"exchanges.{exchange}"
        segment = table.get("segment")
        if segment not in _SEGMENTS:
            raise CalendarDataError(f"{where}.segment must be one of {_SEGMENTS}")
        amo_from = table.get("amo_from")
        amo_until = table.get("amo_until")
        entry = _Hours(
            segment=segment,
            open=_parse_time(table.get("open"), f"{where}.open"),
            close=_parse_time(table.get("close"), f"{where}.close"),
            pre_open=_opt_time(table, "pre_open", where),
            order_entry_end=_opt_time(table, "order_entry_end", where),
            evening_open=_opt_time(table, "evening_open", where),
            close_outside_us_dst=_opt_time(table, "close_outside_us_dst", where),
            amo_from=None if amo_from == "any" else _parse_time(amo_from, f"{where}.amo_from"),
            amo_until=None if amo_until == "any" else _parse_time(amo_until, f"{where}.amo_until"),
        )
        if not entry.open < entry.close:
            raise CalendarDataError(f"{where}: open must be before close")
        if entry.pre_open is not None and not entry.pre_open < entry.open:
            raise CalendarDataError(f"{where}: pre_open must be before open")
        hours[exchange] = entry
    missing = set(EXCHANGES) - set(hours)
    if missing:
        raise CalendarDataError(f"hours missing for {sorted(missing)}")

    years: dict[tuple[str, int], str] = {}
    for year_key, segments in raw.get("years", {}).items():
        year = int(year_key)
        for segment, meta in segments.items():
            if segment not in ("equity", "commodity"):
                raise CalendarDataError(f"years.{year}.{segment}: unknown segment")
            status = meta.get("status")
            if status not in ("official", "provisional"):
                raise CalendarDataError(f"years.{year}.{segment}.status: {status!r}")
            if not meta.get("source"):
                raise CalendarDataError(f"years.{year}.{segment}: a source is required")
            years[(segment, year)] = status

    holidays: dict[date, Holiday] = {}
    for item in raw.get("holidays", []):
        day = item.get("date")
        if not isinstance(day, date) or isinstance(day, datetime):
            raise CalendarDataError(f"holiday date must be a TOML date, got {day!r}")
        if day in holidays:
            raise CalendarDataError(f"holiday {day} listed twice")
        mcx = item.get("mcx")
        if mcx is not None and mcx not in _MCX_PATTERNS:
            raise CalendarDataError(f"holiday {day}: mcx must be one of {_MCX_PATTERNS}")
        equity = bool(item.get("equity", False))
        if not equity and mcx is None:
            raise CalendarDataError(f"holiday {day} closes nothing")
        name = item.get("name")
        if not name:
            raise CalendarDataError(f"holiday {day} needs a name")
        for segment, affected in (("equity", equity), ("commodity", mcx is not None)):
            if affected and (segment, day.year) not in years:
                raise CalendarDataError(f"holiday {day}: no source listed for {segment} {day.year}")
        holidays[day] = Holiday(day, name, equity, mcx, bool(item.get("provisional", False)))

    specials: dict[tuple[str, date], list[_Special]] = {}
    for item in raw.get("special_sessions", []):
        day = item.get("date")
        where = f"special_sessions[{day}]"
        if not isinstance(day, date):
            raise CalendarDataError(f"{where}: date must be a TOML date")
        exchanges = frozenset(item.get("exchanges", ()))
        if not exchanges or not exchanges <= set(EXCHANGES):
            raise CalendarDataError(f"{where}: exchanges must be a non-empty subset of {EXCHANGES}")
        if not item.get("source"):
            raise CalendarDataError(f"{where}: a source is required")
        special = _Special(
            day=day,
            name=str(item.get("name") or "Special session"),
            exchanges=exchanges,
            open=_parse_time(item.get("open"), f"{where}.open"),
            close=_parse_time(item.get("close"), f"{where}.close"),
            pre_open=_opt_time(item, "pre_open", where),
            order_entry_end=_opt_time(item, "order_entry_end", where),
        )
        if not special.open < special.close:
            raise CalendarDataError(f"{where}: open must be before close")
        for exchange in exchanges:
            specials.setdefault((exchange, day), []).append(special)

    return CalendarData(
        hours=hours,
        holidays=holidays,
        specials={key: tuple(sorted(v, key=lambda s: s.open)) for key, v in specials.items()},
        years=years,
    )


@functools.cache
def calendar_data() -> CalendarData:
    """The bundled calendar data (parsed and validated once per process)."""
    text = resources.files("copytrade.lib").joinpath("data/holidays.toml").read_text("utf-8")
    return parse_calendar_data(text)


# --- Rules -------------------------------------------------------------------------------------
def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=n - 1)


def us_dst_in_effect(day: date) -> bool:
    """Whether the US observes daylight saving time on ``day`` (the rule since 2007: from the
    second Sunday of March to the first Sunday of November). MCX shortens its session from
    the first Indian trading day on or after the US change, which is what this gives for an
    IST trading day."""
    return _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)


def mcx_close_time(day: date, data: CalendarData | None = None) -> time:
    """MCX's closing time (non-agricultural commodities) on ``day``: 23:30 during US DST,
    23:55 otherwise."""
    hours = (data or calendar_data()).hours["MCX"]
    if us_dst_in_effect(day) or hours.close_outside_us_dst is None:
        return hours.close
    return hours.close_outside_us_dst


def _require_exchange(exchange: str, data: CalendarData) -> _Hours:
    try:
        return data.hours[exchange]
    except KeyError:
        raise ValueError(f"unknown exchange {exchange!r}; expected one of {EXCHANGES}") from None


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("calendar functions need an aware datetime")
    return now.astimezone(IST)


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=IST)


def trading_day(now: datetime) -> date:
    """The IST calendar date of ``now``: the day everything is keyed by ("today")."""
    return _require_aware(now).date()


def holiday_on(exchange: str, day: date, *, data: CalendarData | None = None) -> Holiday | None:
    """The listed holiday that affects ``exchange`` on ``day`` (MCX half-days included)."""
    data = data or calendar_data()
    hours = _require_exchange(exchange, data)
    found = data.holidays.get(day)
    if found is None:
        return None
    if hours.segment == "commodity":
        return found if found.mcx is not None else None
    return found if found.equity else None


def holidays_known(exchange: str, year: int, *, data: CalendarData | None = None) -> bool:
    """Whether ``year``'s official holiday list for ``exchange`` is in the data file.

    False for years not yet published (only provisional fixed-date entries, or none): the
    calendar then treats unlisted weekdays as trading days, and readiness should warn.
    """
    data = data or calendar_data()
    hours = _require_exchange(exchange, data)
    segment = "commodity" if hours.segment == "commodity" else "equity"
    return data.years.get((segment, year)) == "official"


@functools.lru_cache(maxsize=4096)
def _sessions_cached(exchange: str, day: date, data: CalendarData) -> tuple[Session, ...]:
    hours = _require_exchange(exchange, data)
    specials = data.specials.get((exchange, day))
    if specials:
        return tuple(
            Session(
                start=_at(day, s.open),
                end=_at(day, s.close),
                pre_open=_at(day, s.pre_open) if s.pre_open else None,
                order_entry_end=_at(day, s.order_entry_end) if s.order_entry_end else None,
                name=s.name,
                special=True,
            )
            for s in specials
        )
    if day.weekday() >= 5:
        return ()
    holiday = holiday_on(exchange, day, data=data)
    if hours.segment == "commodity":
        close = mcx_close_time(day, data)
        evening = hours.evening_open or hours.open
        pattern = holiday.mcx if holiday else None
        if pattern == "closed":
            return ()
        if pattern == "evening_only":
            return (Session(_at(day, evening), _at(day, close), None, None, "evening"),)
        if pattern == "morning_only":
            return (Session(_at(day, hours.open), _at(day, evening), None, None, "morning"),)
        return (Session(_at(day, hours.open), _at(day, close), None, None, "regular"),)
    if holiday is not None:
        return ()
    return (
        Session(
            start=_at(day, hours.open),
            end=_at(day, hours.close),
            pre_open=_at(day, hours.pre_open) if hours.pre_open else None,
            order_entry_end=_at(day, hours.order_entry_end) if hours.order_entry_end else None,
            name="regular",
        ),
    )


def sessions(
    exchange: str,
    day: date,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> tuple[Session, ...]:
    """The sessions of ``exchange`` on the IST date ``day`` (empty on a closed day)."""
    data = data or calendar_data()
    if round_the_clock:
        _require_exchange(exchange, data)
        start = _at(day, time(0, 0))
        end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=IST)
        return (Session(start, end, None, None, "round_the_clock"),)
    return _sessions_cached(exchange, day, data)


def is_trading_day(
    exchange: str,
    day: date,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> bool:
    """Whether ``exchange`` has any session on ``day`` (an MCX evening-only holiday counts)."""
    return bool(sessions(exchange, day, round_the_clock=round_the_clock, data=data))


def session_end(
    exchange: str,
    day: date,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> datetime | None:
    """When ``exchange``'s last session on ``day`` ends (None if it does not trade that day).

    Round the clock: midnight at the end of ``day``.
    """
    found = sessions(exchange, day, round_the_clock=round_the_clock, data=data)
    return found[-1].end if found else None


def day_end(
    day: date,
    *,
    exchanges: Iterable[str] = EXCHANGES,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> datetime | None:
    """The end of the trading day across ``exchanges``: the latest ``session_end`` (MCX's
    close on most days). The end-of-day job expires unsent rows and logs sessions out after
    this. None when none of them trades on ``day``."""
    ends = [
        end
        for exchange in exchanges
        if (end := session_end(exchange, day, round_the_clock=round_the_clock, data=data))
        is not None
    ]
    return max(ends) if ends else None


def _fmt(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _fmt_day(moment: datetime, today: date) -> str:
    if moment.date() == today:
        return f"{_fmt(moment)} IST"
    return f"{moment:%a %d %b} {_fmt(moment)} IST"


def _next_session_start(
    exchange: str, t: datetime, round_the_clock: bool, data: CalendarData
) -> datetime | None:
    day = t.date()
    for offset in range(_SEARCH_DAYS):
        for session in sessions(
            exchange, day + timedelta(days=offset), round_the_clock=round_the_clock, data=data
        ):
            if session.start > t:
                return session.start
    return None


def market_phase(
    exchange: str,
    now: datetime,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> MarketStatus:
    """Whether ``exchange`` is in pre-open, open or closed at ``now``, and why."""
    data = data or calendar_data()
    _require_exchange(exchange, data)
    t = _require_aware(now)
    day = t.date()
    if round_the_clock:
        session = sessions(exchange, day, round_the_clock=True, data=data)[0]
        return MarketStatus(
            exchange, t, Phase.OPEN, PhaseReason.ROUND_THE_CLOCK,
            "Open round the clock (TRADING_ROUND_THE_CLOCK)", None, session, t,
        )  # fmt: skip

    holiday = holiday_on(exchange, day, data=data)
    holiday_name = holiday.name if holiday else None
    todays = sessions(exchange, day, data=data)
    for session in todays:
        if session.start <= t < session.end:
            detail = f"Open until {_fmt(session.end)} IST"
            if session.special:
                detail = f"{session.name}: open until {_fmt(session.end)} IST"
            elif holiday_name:
                detail += f" ({session.name} session; {holiday_name})"
            return MarketStatus(
                exchange, t, Phase.OPEN, PhaseReason.OPEN, detail, holiday_name, session, t
            )
        if session.pre_open is not None and session.pre_open <= t < session.start:
            return MarketStatus(
                exchange, t, Phase.PRE_OPEN, PhaseReason.PRE_OPEN,
                f"Pre-open; opens at {_fmt(session.start)} IST", holiday_name, session,
                session.start,
            )  # fmt: skip

    upcoming = _next_session_start(exchange, t, False, data)
    when = f"opens {_fmt_day(upcoming, day)}" if upcoming else "no known next session"
    if not todays:
        if holiday is not None:
            reason, detail = PhaseReason.HOLIDAY, f"Closed for {holiday.name}; {when}"
        elif day.weekday() >= 5:
            reason, detail = PhaseReason.WEEKEND, f"Closed for the weekend; {when}"
        else:  # pragma: no cover - a weekday without sessions is always a listed holiday
            reason, detail = PhaseReason.HOLIDAY, f"Closed; {when}"
    elif t < (todays[0].pre_open or todays[0].start):
        reason, detail = PhaseReason.BEFORE_OPEN, f"Before the open; {when}"
        if holiday_name:
            first = todays[0].name
            label = first[:1].upper() + first[1:]
            detail = f"{label} session only ({holiday_name}); {when}"
    elif t >= todays[-1].end:
        reason, detail = PhaseReason.AFTER_CLOSE, f"Closed at {_fmt(todays[-1].end)} IST; {when}"
        if holiday_name:
            detail = f"{detail} ({holiday_name})"
    else:
        reason, detail = PhaseReason.BETWEEN_SESSIONS, f"Between sessions; {when}"
    return MarketStatus(exchange, t, Phase.CLOSED, reason, detail, holiday_name, None, upcoming)


def is_open(
    exchange: str,
    now: datetime,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> bool:
    """Whether ``exchange``'s normal market is open at ``now`` (pre-open does not count)."""
    return market_phase(exchange, now, round_the_clock=round_the_clock, data=data).is_open


def next_open(
    exchange: str,
    now: datetime,
    *,
    round_the_clock: bool = False,
    data: CalendarData | None = None,
) -> datetime:
    """``now`` if the market is open, else the start of its next session (IST).

    Raises LookupError if no session is found within 400 days (impossible with the bundled
    data: years without holiday data count their weekdays as open).
    """
    status = market_phase(exchange, now, round_the_clock=round_the_clock, data=data)
    if status.next_open is None:
        raise LookupError(f"no {exchange} session within {_SEARCH_DAYS} days of {now}")
    return status.next_open


def amo_accepted(exchange: str, now: datetime, *, data: CalendarData | None = None) -> bool:
    """Whether AliceBlue accepts an after-market order for ``exchange`` at ``now``.

    On a trading day: from ``amo_from`` (15:45) until midnight and from midnight until
    ``amo_until`` (08:57 NSE, 08:59 BSE/currency, 09:10 F&O); all day on days the exchange
    does not trade; MCX at any time.
    """
    data = data or calendar_data()
    hours = _require_exchange(exchange, data)
    t = _require_aware(now)
    if hours.amo_from is None or hours.amo_until is None:
        return True
    if not is_trading_day(exchange, t.date(), data=data):
        return True
    moment = t.timetz().replace(tzinfo=None)
    return moment >= hours.amo_from or moment < hours.amo_until


def round_the_clock_from_settings() -> bool:
    """``settings.TRADING_ROUND_THE_CLOCK`` (False when unset): the copier passes this."""
    from django.conf import settings

    return bool(getattr(settings, "TRADING_ROUND_THE_CLOCK", False))
