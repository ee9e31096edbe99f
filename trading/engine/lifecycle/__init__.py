"""The copy engine's lifecycle (issue 5): what a trading day has beyond entries and exits.

Importing this package registers the lifecycle's decision handlers
(`decide.LIFECYCLE_HANDLERS`), action senders (`sender.ACTION_SENDERS`) and periodic jobs
(`trading.engine.jobs`). Each concern is one module; add yours to the import list below.
"""

from trading.engine.lifecycle import (
    day,  # noqa: F401  (end of the trading day)
    deactivation,  # noqa: F401
    feedloss,  # noqa: F401  (feed loss, missed-exit proposals)
    logins,  # noqa: F401  (sessions through the day)
    mirror,  # noqa: F401  (linked orders, modify and cancel mirroring)
    notify,  # noqa: F401  (alert digest emails)
    readiness,  # noqa: F401  (who would not receive copies today)
    reconcile,  # noqa: F401  (drift, close policy)
)
