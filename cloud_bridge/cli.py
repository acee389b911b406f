"""`edge uplink ...`: look at the outbox and the uplink contract from the command line."""
from __future__ import annotations

import json


def _status(args) -> int:
    from edge.cli.common import load_config_or_exit, open_store_or_exit

    from . import outbox

    cfg = load_config_or_exit(args.config)
    store = open_store_or_exit(cfg)
    try:
        outbox.ensure_schema(store)
        st = outbox.stats(store)
        with store._lock:
            evicted = {k: n for k, n in store.conn.execute("SELECT kind, count(*) FROM uplink_evicted GROUP BY kind")}
        out = {"depth": st.depth, "pending_bytes": st.bytes,
               "budget_bytes": int(cfg.storage.outbox_budget_mb * 1024 * 1024), "last_seq": st.last_seq,
               "pending_from_seq": st.pending_from_seq, "oldest_pending_ms": st.oldest_pending_ms,
               "pending_by_priority": {str(p): {"rows": r, "bytes": b} for p, (r, b) in st.by_priority.items()},
               "evicted_by_kind": evicted, "media": outbox.media_counts(store),
               "broker": cfg.uplink.broker if cfg.uplink else None}
    finally:
        store.close()
    print(json.dumps(out, indent=2))
    return 0


def _schemas(args) -> int:
    from . import asyncapi, schemagen

    if args.check:
        return max(schemagen.main(["--check"]), asyncapi.main(["--check"]))
    schemagen.main([])
    return asyncapi.main([])


def register_cli(sub) -> None:
    p = sub.add_parser("uplink", help="MQTT uplink: outbox status, contract files")
    s = p.add_subparsers(dest="uplink_command", metavar="SUBCOMMAND")
    q = s.add_parser("status", help="outbox depth, last seq, evictions (reads the store; works offline)")
    q.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
    q.set_defaults(func=_status)
    q = s.add_parser("schemas", help="regenerate cloud_bridge/schemas/ and docs/asyncapi.yaml (--check: verify)")
    q.add_argument("--check", action="store_true")
    q.set_defaults(func=_schemas)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
