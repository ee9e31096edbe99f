"""The copy engine (issue 4): detect master orders, decide and size every follower's copy, send
exactly once, track what became of it.

Modules (each a set of small step functions; the copier process is a thin loop over them):

    tracker     pure: which events a master order snapshot implies (accepted, modified,
                partial_fill, filled, cancelled, rejected) with their dedupe keys
    decide      one transaction per observed order: MasterOrder, events, the master's
                position book, and every follower's CopyTrade rows (entry checks in
                `checks`, proportional exits, freeze legs, tags); manual copy trades
    checks      pure: the entry checks in DESIGN.md's order, with `reasons`
    sender      claim (PENDING -> SENDING) -> build -> send -> classify -> record;
                ambiguity by tag; `send_copy_trade(id)` is the whole path for one id
    tracking    follower order updates -> CopyTrade fill progress, `ledger`, later
                rejections, UNKNOWN found late
    ledger      the position ledger: idempotent fills, exit reservations (never oversell)
    pnl         today's P&L per account from its position book (max daily loss)
    steps       the runner's database steps (accounts/sessions, baseline, sweeps, orphans,
                heartbeat, automatic API-key login)
    runner      the asyncio copier: one event loop, aiohttp clients, one database thread
    alerts      Alert rows (UNKNOWN, FAILED, ...) for people; the notifications send them
    faults      named kill points for crash tests (COPIER_CRASH_AT)
    firstrun    the first `make run`: the master linked to a sandbox account, demo followers
    bulk        plain-row multi-row writes for the hot path
    lifecycle/  issue 5: mirror (linked orders, modify and cancel mirroring), deactivation
                (flatten or detach a deactivated follower's positions), notify (the alert
                digest emails), logins (a session AliceBlue ends mid-day: re-login or
                needs today's login, one alert), day (the end of the trading day: unsent
                rows expire, sessions log out), readiness (who would not receive copies
                today: the command, the copier before market open, "check now"),
                feedloss (a master feed lost mid-day: MasterFeed.lost_at, one FEED_LOST
                alert; late exits -> ExitProposals the master sends or dismisses),
                reconcile (copied positions vs the master's, scaled: PositionDrift, one
                DRIFT alert; the close policy), exits (EXIT copies outside a master
                event's decision, and the manual order that records such a request)

Seams for the lifecycle engine (issue 5):

* `decide.LIFECYCLE_HANDLERS[kind]` — ``modified`` / ``cancelled`` events reach a handler
  (event, order, master, now) -> (Recorded, outcome, note) inside the decision transaction;
  it writes MODIFY/CANCEL CopyTrade rows with ``linked`` = the PLACE copy they act on
  (``order.events`` -> ``copy_trades`` of the ``accepted`` event are the linked candidates;
  use a tag prefix other than ``tags.PLACE_PREFIX``). Until then those events are recorded
  with outcome ``lifecycle``.
* `sender.ACTION_SENDERS` / `SYNC_ACTION_SENDERS[action]` — how a claimed MODIFY/CANCEL is
  sent (claim, governor, classification, recording are shared); without one such a row
  FAILs, it is never sent as a new order. `sender.ACTION_CLAIMS` (the claim of a batch of
  such rows: wait for the linked acknowledgement, keep a follower order's changes in order),
  `ACTION_RECORDED` (after the outcome: a modification changes its linked row) and
  `ACTION_RESOLVERS` (an ambiguous one judged by the linked order) are `lifecycle.mirror`'s;
  its rows carry the tag prefixes ``CM`` (modify) and ``CX`` (cancel).
* Late exits are SKIPPED with reason ``late_exit`` (found after the staleness window); each
  gets one `ExitProposal` (`lifecycle.feedloss`). `MasterFeed` holds the master feed's state
  for banners (``lost_at`` while lost); `Alert` rows with ``notified_at`` null are what a
  digest has not sent yet.
* Waiting exits (PENDING, reason ``needs_login`` / ``market_closed``, ``next_attempt_at``)
  expire at their exchange's close (`lifecycle.day`); `PositionLedger` vs `MasterPosition`
  (and the followers' broker positions) is reconciliation's input (`lifecycle.reconcile`).
* `steps.login_candidates` / `Copier._auto_logins` log API-key accounts in once their owner
  signed in today (with backoff), never after the day's last close; `Copier.session_lost`
  handles EC087/401 on any call (`lifecycle.logins`); `lifecycle.day` logs sessions out.
"""
