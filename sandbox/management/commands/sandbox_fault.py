"""Fault injection, matching settings and dialect switches of the sandbox broker.

    manage.py sandbox_fault set [--account ID] latency_ms=300 jitter_ms=100 error_rate=0.1
    manage.py sandbox_fault clear [--account ID]
    manage.py sandbox_fault show
    manage.py sandbox_fault expire-sessions [--account ID]
    manage.py sandbox_fault drop-websockets [--account ID]
    manage.py sandbox_fault matching [--account ID] partial_fill_qty=10
    manage.py sandbox_fault dialect g3_trigger_pending=TRIGGER_PENDING mcx_quantity=units
    manage.py sandbox_fault dialect --reset

Changes go to the state file; a running server applies them within a second.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox import options as opts
from sandbox.store import GLOBAL, Store, StoreError


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


class Command(BaseCommand):
    help = "Inject faults into the sandbox broker, set matching and dialect switches."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--state", default=str(settings.SANDBOX_STATE_PATH))
        sub = parser.add_subparsers(dest="action", required=True)
        for name in ("set", "matching"):
            p = sub.add_parser(name)
            p.add_argument("--account", default=None)
            p.add_argument("values", nargs="+", metavar="NAME=VALUE")
        for name in ("clear", "expire-sessions", "drop-websockets"):
            p = sub.add_parser(name)
            p.add_argument("--account", default=None)
        sub.add_parser("show")
        dialect = sub.add_parser("dialect")
        dialect.add_argument("values", nargs="*", metavar="NAME=VALUE")
        dialect.add_argument("--reset", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store(options["state"])
        try:
            self._handle(store, options)
        except (StoreError, opts.OptionError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            store.close()

    def _handle(self, store: Store, options: dict[str, Any]) -> None:
        action = options["action"]
        scope = options.get("account") or GLOBAL
        if action == "set":
            merged = store.set_overrides("faults", scope, _pairs(options["values"]))
            self.stdout.write(json.dumps({scope: merged}) + "\n")
        elif action == "matching":
            merged = store.set_overrides("matching", scope, _pairs(options["values"]))
            self.stdout.write(json.dumps({scope: merged}) + "\n")
        elif action == "clear":
            store.clear_overrides("faults", None if scope == GLOBAL else scope)
            store.clear_overrides("matching", None if scope == GLOBAL else scope)
            self.stdout.write("cleared\n")
        elif action == "expire-sessions":
            count = store.expire_sessions(options["account"])
            self.stdout.write(f"expired the sessions of {count} account(s)\n")
        elif action == "drop-websockets":
            store.drop_websockets(options["account"])
            self.stdout.write("order-notify sockets will be dropped\n")
        elif action == "show":
            data = {
                "faults": store.overrides("faults"),
                "matching": store.overrides("matching"),
                "dialect": store.dialect(),
                "known_faults": {k: v[2] for k, v in opts.FAULTS.items()},
                "known_dialects": {k: list(v[1]) for k, v in opts.DIALECTS.items()},
            }
            self.stdout.write(json.dumps(data, indent=2) + "\n")
        elif action == "dialect":
            if options["reset"]:
                result = store.reset_dialect()
            elif options["values"]:
                result = store.set_dialect(_pairs(options["values"]))
            else:
                result = store.dialect()
            self.stdout.write(json.dumps(result, indent=2) + "\n")
