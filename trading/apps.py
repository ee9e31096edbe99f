from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _reinstall_board_triggers(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """SQLite drops a table's triggers when a migration rebuilds it: put them back."""
    from django.db import connections

    connection = connections[using]
    tables = set(connection.introspection.table_names())
    if {"trading_copytrade", "trading_followerboard"} <= tables:
        from trading import board

        board.install_triggers(connection)


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        post_migrate.connect(_reinstall_board_triggers, sender=self)
        # The lifecycle engine registers its handlers, action senders and periodic jobs in
        # the engine's seams: every process (copier, web, scripts) sends the same way.
        import trading.engine.lifecycle  # noqa: F401
