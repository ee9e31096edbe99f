"""The bundled holiday data: matches the published lists, and bad data is refused at load."""

from __future__ import annotations

from datetime import date

import pytest

from copytrade.lib.calendar import CalendarDataError, calendar_data, parse_calendar_data

# The published NSE lists (weekday holidays), typed in from the circulars cited in the file.
NSE_2025 = {
    "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
    "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22",
    "2025-11-05", "2025-12-25",
}  # fmt: skip
NSE_2026 = {
    "2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03",
    "2026-04-14", "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02",
    "2026-10-20", "2026-11-10", "2026-11-24", "2026-12-25",
}  # fmt: skip
MCX_CLOSED_ALL_DAY_2026 = {"2026-01-26", "2026-04-03", "2026-10-02", "2026-12-25"}


def _equity_days(year):
    return {
        day.isoformat()
        for day, holiday in calendar_data().holidays.items()
        if holiday.equity and day.year == year
    }


def test_equity_holidays_match_the_published_lists():
    assert _equity_days(2025) == NSE_2025
    assert _equity_days(2026) == NSE_2026


def test_mcx_full_closures_2026():
    closed = {
        day.isoformat()
        for day, holiday in calendar_data().holidays.items()
        if holiday.mcx == "closed" and day.year == 2026
    }
    assert closed == MCX_CLOSED_ALL_DAY_2026


def test_every_listed_holiday_is_a_weekday():
    for day in calendar_data().holidays:
        assert day.weekday() < 5, day


def test_only_unpublished_years_have_provisional_entries():
    data = calendar_data()
    for day, holiday in data.holidays.items():
        for segment, affected in (("equity", holiday.equity), ("commodity", holiday.mcx)):
            if affected:
                status = data.years[(segment, day.year)]
                assert holiday.provisional is (status == "provisional"), day


def test_years_2025_to_2027_are_covered():
    years = calendar_data().years
    for year in (2025, 2026, 2027):
        assert (("equity", year)) in years
        assert (("commodity", year)) in years


def test_special_sessions_are_on_the_known_dates():
    specials = calendar_data().specials
    assert ("NSE", date(2025, 2, 1)) in specials
    assert ("MCX", date(2026, 2, 1)) in specials
    assert ("NSE", date(2025, 10, 21)) in specials
    assert ("CDS", date(2026, 2, 1)) not in specials


MINIMAL = """
schema = 1
[exchanges.NSE]
segment = "equity"
open = "09:15"
close = "15:30"
amo_from = "15:45"
amo_until = "08:57"
[exchanges.BSE]
segment = "equity"
open = "09:15"
close = "15:30"
amo_from = "15:45"
amo_until = "08:59"
[exchanges.NFO]
segment = "equity"
open = "09:15"
close = "15:30"
amo_from = "15:45"
amo_until = "09:10"
[exchanges.BFO]
segment = "equity"
open = "09:15"
close = "15:30"
amo_from = "15:45"
amo_until = "09:10"
[exchanges.CDS]
segment = "currency"
open = "09:00"
close = "17:00"
amo_from = "15:45"
amo_until = "08:59"
[exchanges.BCD]
segment = "currency"
open = "09:00"
close = "17:00"
amo_from = "15:45"
amo_until = "08:59"
[exchanges.MCX]
segment = "commodity"
open = "09:00"
evening_open = "17:00"
close = "23:30"
close_outside_us_dst = "23:55"
amo_from = "any"
amo_until = "any"
[years.2026.equity]
status = "official"
source = "test"
[years.2026.commodity]
status = "official"
source = "test"
"""


def test_minimal_data_parses():
    data = parse_calendar_data(MINIMAL)
    assert set(data.hours) == {"NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[holidays]]\ndate = 2026-03-03\nname = "Holi"\nequity = true\n'
         '[[holidays]]\ndate = 2026-03-03\nname = "Holi"\nequity = true\n', "listed twice"),
        ('[[holidays]]\ndate = 2026-03-03\nname = "Holi"\nmcx = "sometimes"\n', "mcx must be"),
        ('[[holidays]]\ndate = 2026-03-03\nname = "Holi"\n', "closes nothing"),
        ('[[holidays]]\ndate = 2026-03-03\nequity = true\n', "needs a name"),
        ('[[holidays]]\ndate = 2031-03-03\nname = "X"\nequity = true\n', "no source"),
        ('[[holidays]]\ndate = "2026-03-03"\nname = "X"\nequity = true\n', "TOML date"),
        ('[[special_sessions]]\ndate = 2026-02-01\nexchanges = ["NYSE"]\nopen = "09:15"\n'
         'close = "15:30"\nsource = "x"\n', "subset"),
        ('[[special_sessions]]\ndate = 2026-02-01\nexchanges = ["NSE"]\nopen = "09:15"\n'
         'close = "15:30"\n', "source is required"),
        ('[[special_sessions]]\ndate = 2026-02-01\nexchanges = ["NSE"]\nopen = "15:30"\n'
         'close = "09:15"\nsource = "x"\n', "open must be before close"),
        ('[[special_sessions]]\ndate = 2026-02-01\nexchanges = ["NSE"]\nopen = "9h"\n'
         'close = "15:30"\nsource = "x"\n', "bad time"),
        ('[years.2030.equity]\nstatus = "rumoured"\nsource = "x"\n', "status"),
        ('[years.2030.equity]\nstatus = "official"\n', "source is required"),
    ],
)  # fmt: skip
def test_bad_data_is_refused(extra, message):
    with pytest.raises(CalendarDataError, match=message):
        parse_calendar_data(MINIMAL + extra)


def test_missing_exchange_hours_are_refused():
    text = MINIMAL.replace(
        '[exchanges.BCD]\nsegment = "currency"', '[exchanges.XYZ]\nsegment = "currency"'
    )
    with pytest.raises(CalendarDataError, match="hours missing"):
        parse_calendar_data(text)


def test_wrong_schema_is_refused():
    with pytest.raises(CalendarDataError, match="schema"):
        parse_calendar_data(MINIMAL.replace("schema = 1", "schema = 2"))
