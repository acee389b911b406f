"""`edge user ...` and `edge token ...`: console accounts and API tokens from the command line.

Works while the gateway runs (SQLite WAL lets both use the database); a new password ends that user's sessions.
"""
from __future__ import annotations

import datetime as dt
import getpass
import sys
from pathlib import Path

DEFAULT_CONFIG = "/etc/edge-gateway/edge.yaml"


def _open_store(config_path: str):
    from edge.config import ConfigError, load_config
    from edge.store import Store

    from . import auth  # noqa: F401 - registers the web_* tables before the store opens

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return None
    return Store(Path(cfg.storage.path) / "edge.db")


def _read_password(args) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("repeat: ") != first:
        print("the passwords differ", file=sys.stderr)
        return None
    return first


def _ts(ms) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _with_accounts(fn):
    def run(args) -> int:
        from .auth import Accounts, AuthError

        store = _open_store(args.config)
        if store is None:
            return 2
        try:
            return fn(args, Accounts(store)) or 0
        except AuthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            store.close()
    return run


@_with_accounts
def _user_add(args, acc) -> int:
    from .auth import check_name, check_role

    check_name(args.name)
    check_role(args.role)
    pw = _read_password(args)
    if pw is None:
        return 1
    acc.add_user(args.name, args.role, pw)
    print(f"user {args.name} ({args.role}) added")
    return 0


@_with_accounts
def _user_list(args, acc) -> int:
    for u in acc.users():
        print(f"{u['name']:<24} {u['role']:<10} created {_ts(u['created_ms'])}  last login {_ts(u['last_login_ms'])}")
    return 0


@_with_accounts
def _user_delete(args, acc) -> int:
    acc.delete_user(args.name)
    print(f"user {args.name} deleted")
    return 0


@_with_accounts
def _user_passwd(args, acc) -> int:
    if acc.get_user(args.name) is None:
        print(f"error: no user {args.name!r}", file=sys.stderr)
        return 1
    pw = _read_password(args)
    if pw is None:
        return 1
    acc.set_password(args.name, pw)
    print(f"password of {args.name} changed; their sessions were ended")
    return 0


@_with_accounts
def _user_role(args, acc) -> int:
    acc.set_role(args.name, args.role)
    print(f"{args.name} is now {args.role}")
    return 0


@_with_accounts
def _token_add(args, acc) -> int:
    tok = acc.add_token(args.name, args.role, "cli")
    print(f"token {tok['name']} ({tok['role']}, id {tok['id']}) — shown only now, store it safely:")
    print(tok["token"])
    return 0


@_with_accounts
def _token_list(args, acc) -> int:
    for tk in acc.tokens():
        print(f"{tk['id']}  {tk['name']:<24} {tk['role']:<10} created {_ts(tk['created_ms'])}  "
              f"last used {_ts(tk['last_used_ms'])}")
    return 0


@_with_accounts
def _token_revoke(args, acc) -> int:
    acc.revoke_token(args.id)
    print(f"token {args.id} revoked")
    return 0


def register_cli(sub) -> None:
    def with_config(p):
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="edge.yaml (finds the database)")
        return p

    u = sub.add_parser("user", help="console accounts: add, list, delete, passwd, role")
    us = u.add_subparsers(dest="user_command", metavar="ACTION")
    u.set_defaults(func=lambda args: (u.print_help(), 2)[1])
    p = with_config(us.add_parser("add", help="add a console account"))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["manager", "installer"])
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p.set_defaults(func=_user_add)
    p = with_config(us.add_parser("list", help="list console accounts"))
    p.set_defaults(func=_user_list)
    p = with_config(us.add_parser("delete", help="delete an account (not the last installer)"))
    p.add_argument("name")
    p.set_defaults(func=_user_delete)
    p = with_config(us.add_parser("passwd", help="set a new password"))
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=_user_passwd)
    p = with_config(us.add_parser("role", help="change an account's role"))
    p.add_argument("name")
    p.add_argument("role", choices=["manager", "installer"])
    p.set_defaults(func=_user_role)

    tk = sub.add_parser("token", help="API tokens for machine clients (Prometheus, county tools)")
    ts = tk.add_subparsers(dest="token_command", metavar="ACTION")
    tk.set_defaults(func=lambda args: (tk.print_help(), 2)[1])
    p = with_config(ts.add_parser("add", help="create a token (printed once)"))
    p.add_argument("name")
    p.add_argument("--role", default="manager", choices=["manager", "installer"])
    p.set_defaults(func=_token_add)
    p = with_config(ts.add_parser("list", help="list tokens"))
    p.set_defaults(func=_token_list)
    p = with_config(ts.add_parser("revoke", help="revoke a token by id or name"))
    p.add_argument("id")
    p.set_defaults(func=_token_revoke)
