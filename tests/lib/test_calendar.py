"""Exchange calendar: trading days, phases with reasons, MCX sessions, DST rule, AMO windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from copytrade.lib import calendar as cal
from copytrade.lib.calendar import Phase, PhaseReason
from copytrade.lib.clock import IST


def ist(year, month, day, hour=0, minute=0, second=0, micro=0):
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=IST)


# 2 March 2026 is a Monday and an ordinary trading day; 3 March is Holi.
MONDAY = (2026, 3, 2)


def test_trading_day_is_the_ist_date():
    assert cal.trading_day(datetime(2026, 3, 2, 19, 0, tzinfo=UTC)) == date(2026, 3, 3)
    assert cal.trading_day(datetime(2026, 3, 2, 18, 29, tzinfo=UTC)) == date(2026, 3, 2)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        cal.trading_day(datetime(2026, 3, 2, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        cal.market_phase("NSE", datetime(2026, 3, 2, 10, 0))


def test_unknown_exchange_is_refused():
    with pytest.raises(ValueError, match="unknown exchange"):
        cal.market_phase("NYSE", ist(*MONDAY, 10))


# --- Weekends and holidays ---------------------------------------------------------------------
@pytest.mark.parametrize("exchange", cal.EXCHANGES)
def test_weekend_is_closed_with_the_reason(exchange):
    status = cal.market_phase(exchange, ist(2026, 3, 7, 11, 0))  # Saturday
    assert status.phase is Phase.CLOSED
    assert status.reason is PhaseReason.WEEKEND
    assert "weekend" in status.detail
    assert status.next_open is not None and status.next_open.date() == date(2026, 3, 9)
    assert not cal.is_trading_day(exchange, date(2026, 3, 8))


def test_listed_2026_holiday_closes_equity_with_its_name():
    status = cal.market_phase("NSE", ist(2026, 3, 3, 11, 0))
    assert status.phase is Phase.CLOSED
    assert status.reason is PhaseReason.HOLIDAY
    assert status.holiday == "Holi"
    assert "Holi" in status.detail
    assert status.next_open == ist(2026, 3, 4, 9, 15)
    for exchange in ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD"):
        assert not cal.is_trading_day(exchange, date(2026, 3, 3))
        assert cal.holiday_on(exchange, date(2026, 3, 3)).name == "Holi"


def test_special_election_holiday_2026_is_closed():
    status = cal.market_phase("NFO", ist(2026, 1, 15, 10, 0))
    assert status.reason is PhaseReason.HOLIDAY
    assert "Maharashtra" in status.holiday


def test_mcx_on_an_equity_holiday_trades_only_the_evening():
    morning = cal.market_phase("MCX", ist(2026, 3, 3, 11, 0))
    assert morning.phase is Phase.CLOSED
    assert morning.reason is PhaseReason.BEFORE_OPEN
    assert morning.holiday == "Holi"
    assert "Evening session only (Holi)" in morning.detail
    assert morning.next_open == ist(2026, 3, 3, 17, 0)
    evening = cal.market_phase("MCX", ist(2026, 3, 3, 18, 30))
    assert evening.is_open
    assert evening.session is not None and evening.session.name == "evening"
    assert cal.is_trading_day("MCX", date(2026, 3, 3))


def test_mcx_closed_all_day_on_good_friday():
    status = cal.market_phase("MCX", ist(2026, 4, 3, 19, 0))
    assert status.reason is PhaseReason.HOLIDAY
    assert status.holiday == "Good Friday"
    assert not cal.is_trading_day("MCX", date(2026, 4, 3))


def test_mcx_new_year_morning_only():
    assert cal.is_open("MCX", ist(2026, 1, 1, 10, 0))
    late = cal.market_phase("MCX", ist(2026, 1, 1, 17, 30))
    assert late.reason is PhaseReason.AFTER_CLOSE
    assert late.holiday == "New Year Day"
    assert cal.session_end("MCX", date(2026, 1, 1)) == ist(2026, 1, 1, 17, 0)
    assert cal.is_open("NSE", ist(2026, 1, 1, 10, 0))  # not an equity holiday


def test_unlisted_future_year_counts_weekdays_as_open_and_says_so():
    assert cal.is_open("NSE", ist(2030, 3, 5, 10, 0))
    assert not cal.holidays_known("NSE", 2030)


def test_holidays_known_only_for_official_lists():
    assert cal.holidays_known("NSE", 2025)
    assert cal.holidays_known("NFO", 2026)
    assert cal.holidays_known("CDS", 2026)
    assert cal.holidays_known("MCX", 2026)
    assert not cal.holidays_known("NSE", 2027)  # provisional
    assert not cal.holidays_known("MCX", 2027)


def test_provisional_2027_fixed_date_holiday_is_applied():
    status = cal.market_phase("NSE", ist(2027, 1, 26, 10, 0))
    assert status.reason is PhaseReason.HOLIDAY
    assert cal.holiday_on("NSE", date(2027, 1, 26)).provisional


# --- Pre-open and boundaries -------------------------------------------------------------------
def test_pre_open_accepts_orders_until_0908():
    status = cal.market_phase("NSE", ist(*MONDAY, 9, 0))
    assert status.phase is Phase.PRE_OPEN
    assert status.reason is PhaseReason.PRE_OPEN
    assert status.accepts_orders
    assert not status.is_open
    assert status.next_open == ist(*MONDAY, 9, 15)
    buffer = cal.market_phase("BSE", ist(*MONDAY, 9, 8))
    assert buffer.phase is Phase.PRE_OPEN
    assert not buffer.accepts_orders
    assert cal.market_phase("NSE", ist(*MONDAY, 9, 14, 59)).phase is Phase.PRE_OPEN


def test_derivatives_have_no_pre_open():
    status = cal.market_phase("NFO", ist(*MONDAY, 9, 5))
    assert status.phase is Phase.CLOSED
    assert status.reason is PhaseReason.BEFORE_OPEN
    assert not status.accepts_orders


@pytest.mark.parametrize(
    ("moment", "phase", "reason"),
    [
        (time(8, 59, 59), Phase.CLOSED, PhaseReason.BEFORE_OPEN),
        (time(9, 15), Phase.OPEN, PhaseReason.OPEN),
        (time(12, 0), Phase.OPEN, PhaseReason.OPEN),
        (time(15, 29, 59, 999999), Phase.OPEN, PhaseReason.OPEN),
        (time(15, 30), Phase.CLOSED, PhaseReason.AFTER_CLOSE),
        (time(23, 59), Phase.CLOSED, PhaseReason.AFTER_CLOSE),
    ],
)
def test_nse_open_and_close_boundaries(moment, phase, reason):
    status = cal.market_phase("NSE", datetime.combine(date(*MONDAY), moment, tzinfo=IST))
    assert status.phase is phase
    assert status.reason is reason
    assert status.accepts_orders is (phase is Phase.OPEN)


def test_open_status_says_until_when():
    status = cal.market_phase("NFO", ist(*MONDAY, 10, 0))
    assert status.detail == "Open until 15:30 IST"
    assert status.next_open == status.at
    assert cal.next_open("NFO", ist(*MONDAY, 10, 0)) == ist(*MONDAY, 10, 0)


def test_currency_trades_until_five():
    assert cal.is_open("CDS", ist(*MONDAY, 9, 0))
    assert cal.is_open("BCD", ist(*MONDAY, 16, 59))
    assert not cal.is_open("CDS", ist(*MONDAY, 17, 0))


def test_status_accepts_utc_input_and_reports_ist():
    status = cal.market_phase("NSE", datetime(2026, 3, 2, 4, 0, tzinfo=UTC))  # 09:30 IST
    assert status.is_open
    assert status.at == ist(*MONDAY, 9, 30)


# --- MCX hours and the US daylight-saving rule -------------------------------------------------
def test_mcx_evening_session_on_a_normal_day():
    assert cal.is_open("MCX", ist(*MONDAY, 9, 0))
    assert cal.is_open("MCX", ist(*MONDAY, 17, 0))
    assert cal.is_open("MCX", ist(*MONDAY, 23, 54, 59))
    closed = cal.market_phase("MCX", ist(*MONDAY, 23, 55))
    assert closed.reason is PhaseReason.AFTER_CLOSE
    assert closed.next_open == ist(2026, 3, 3, 17, 0)  # Holi: evening session only


@pytest.mark.parametrize(
    ("day", "close"),
    [
        # MCX circulars: 23:30 from 11 Mar 2024 to 1 Nov 2024 inclusive (AngelOne), 23:55
        # from 6 Nov 2023 (AliceBlue), 23:30 from 10 Mar 2025, 23:55 from 4 Nov 2019.
        (date(2024, 3, 8), time(23, 55)),
        (date(2024, 3, 11), time(23, 30)),
        (date(2024, 11, 1), time(23, 30)),
        (date(2024, 11, 4), time(23, 55)),
        (date(2023, 11, 6), time(23, 55)),
        (date(2025, 3, 7), time(23, 55)),
        (date(2025, 3, 10), time(23, 30)),
        (date(2019, 11, 4), time(23, 55)),
        (date(2026, 3, 6), time(23, 55)),
        (date(2026, 3, 9), time(23, 30)),
        (date(2026, 10, 30), time(23, 30)),
        (date(2026, 11, 2), time(23, 55)),
    ],
)
def test_mcx_close_follows_us_daylight_saving(day, close):
    assert cal.mcx_close_time(day) == close


def test_us_dst_rule():
    assert not cal.us_dst_in_effect(date(2026, 3, 7))
    assert cal.us_dst_in_effect(date(2026, 3, 8))  # second Sunday of March
    assert cal.us_dst_in_effect(date(2026, 10, 31))
    assert not cal.us_dst_in_effect(date(2026, 11, 1))  # first Sunday of November


def test_mcx_closes_at_2330_during_us_dst():
    day = (2026, 6, 15)
    assert cal.is_open("MCX", ist(*day, 23, 29))
    assert cal.market_phase("MCX", ist(*day, 23, 40)).reason is PhaseReason.AFTER_CLOSE
    assert cal.session_end("MCX", date(*day)) == ist(*day, 23, 30)


# --- Special sessions --------------------------------------------------------------------------
def test_budget_sunday_2026_is_a_special_trading_day():
    assert cal.is_open("NSE", ist(2026, 2, 1, 10, 0))
    assert cal.is_open("NFO", ist(2026, 2, 1, 15, 0))
    assert cal.is_open("MCX", ist(2026, 2, 1, 16, 0))
    assert not cal.is_open("MCX", ist(2026, 2, 1, 17, 30))
    assert not cal.is_open("CDS", ist(2026, 2, 1, 10, 0))
    status = cal.market_phase("NSE", ist(2026, 2, 1, 10, 0))
    assert status.session is not None and status.session.special
    assert "Budget" in status.detail


def test_muhurat_session_2025():
    day = date(2025, 10, 21)
    assert cal.is_open("NSE", ist(2025, 10, 21, 14, 0))
    assert cal.is_open("MCX", ist(2025, 10, 21, 14, 0))
    morning = cal.market_phase("NSE", ist(2025, 10, 21, 10, 0))
    assert morning.reason is PhaseReason.BEFORE_OPEN
    assert "Muhurat" in morning.detail and "Diwali" in morning.detail
    assert cal.market_phase("NSE", ist(2025, 10, 21, 13, 35)).phase is Phase.PRE_OPEN
    assert not cal.is_open("NSE", ist(2025, 10, 21, 14, 45))
    assert cal.session_end("NSE", day) == ist(2025, 10, 21, 14, 45)
    # The next day (Balipratipada) is a holiday too: the next regular open is 23 Oct.
    assert cal.next_open("NSE", ist(2025, 10, 21, 16, 0)) == ist(2025, 10, 23, 9, 15)


# --- next_open, session_end, day_end -----------------------------------------------------------
def test_next_open_after_friday_close_is_monday():
    assert cal.next_open("NSE", ist(2026, 3, 6, 15, 45)) == ist(2026, 3, 9, 9, 15)
    assert cal.next_open("MCX", ist(2026, 3, 6, 23, 58)) == ist(2026, 3, 9, 9, 0)


def test_next_open_skips_a_run_of_holidays():
    # Good Friday 3 Apr 2026, then the weekend.
    assert cal.next_open("NSE", ist(2026, 4, 2, 16, 0)) == ist(2026, 4, 6, 9, 15)


def test_session_end_per_exchange():
    day = date(*MONDAY)
    assert cal.session_end("NSE", day) == ist(*MONDAY, 15, 30)
    assert cal.session_end("CDS", day) == ist(*MONDAY, 17, 0)
    assert cal.session_end("MCX", day) == ist(*MONDAY, 23, 55)
    assert cal.session_end("NSE", date(2026, 3, 3)) is None
    assert cal.session_end("MCX", date(2026, 3, 3)) == ist(2026, 3, 3, 23, 55)


def test_day_end_is_the_latest_close():
    assert cal.day_end(date(*MONDAY)) == ist(*MONDAY, 23, 55)
    assert cal.day_end(date(*MONDAY), exchanges=("NSE", "NFO")) == ist(*MONDAY, 15, 30)
    assert cal.day_end(date(2026, 4, 3)) is None  # Good Friday: nobody trades
    assert cal.day_end(date(2026, 3, 7)) is None


# --- Round the clock ---------------------------------------------------------------------------
def test_round_the_clock_opens_everything_always():
    saturday_night = ist(2026, 3, 7, 3, 0)
    for exchange in cal.EXCHANGES:
        status = cal.market_phase(exchange, saturday_night, round_the_clock=True)
        assert status.is_open
        assert status.reason is PhaseReason.ROUND_THE_CLOCK
        assert cal.is_open(exchange, saturday_night, round_the_clock=True)
        assert cal.next_open(exchange, saturday_night, round_the_clock=True) == saturday_night
    holi = ist(2026, 3, 3, 11, 0)
    assert cal.is_open("NSE", holi, round_the_clock=True)
    assert not cal.is_open("NSE", holi)
    assert cal.is_trading_day("NSE", date(2026, 3, 8), round_the_clock=True)
    assert cal.session_end("NSE", date(2026, 3, 8), round_the_clock=True) == ist(2026, 3, 9)


def test_round_the_clock_switch_reads_settings(settings):
    settings.TRADING_ROUND_THE_CLOCK = True
    assert cal.round_the_clock_from_settings() is True
    settings.TRADING_ROUND_THE_CLOCK = False
    assert cal.round_the_clock_from_settings() is False


def test_round_the_clock_defaults_off():
    from django.conf import settings

    assert settings.TRADING_ROUND_THE_CLOCK is False


# --- AMO windows -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exchange", "moment", "accepted"),
    [
        ("NSE", time(15, 44), False),
        ("NSE", time(15, 45), True),
        ("NSE", time(23, 0), True),
        ("NSE", time(8, 56), True),
        ("NSE", time(8, 57), False),
        ("NSE", time(12, 0), False),
        ("BSE", time(8, 58), True),
        ("BSE", time(8, 59), False),
        ("NFO", time(9, 9), True),
        ("NFO", time(9, 10), False),
        ("CDS", time(8, 58), True),
        ("MCX", time(12, 0), True),
        ("MCX", time(3, 0), True),
    ],
)
def test_amo_windows_on_a_trading_day(exchange, moment, accepted):
    now = datetime.combine(date(*MONDAY), moment, tzinfo=IST)
    assert cal.amo_accepted(exchange, now) is accepted


def test_amo_all_day_when_the_exchange_does_not_trade():
    assert cal.amo_accepted("NSE", ist(2026, 3, 7, 12, 0))  # Saturday
    assert cal.amo_accepted("NFO", ist(2026, 3, 3, 12, 0))  # Holi


def test_every_day_in_the_data_years_has_a_coherent_status():
    # Walk 2025-2027 in odd steps: no exception, OPEN iff inside a session, next_open ahead.
    moment = ist(2025, 1, 1)
    end = ist(2028, 1, 1)
    while moment < end:
        for exchange in ("NSE", "MCX"):
            status = cal.market_phase(exchange, moment)
            inside = any(s.start <= moment < s.end for s in cal.sessions(exchange, moment.date()))
            assert status.is_open is inside
            assert status.next_open is not None and status.next_open >= moment
        moment += timedelta(hours=2, minutes=7)  # odd step: lands on many minutes
