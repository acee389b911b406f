"""`edge user ...` / `edge token ...`: accounts made on the command line work in the console."""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from edge.store import Store
from edge.web.auth import Accounts
from edge.web.cli import register_cli
from test_web_harness import PASSWORD, start_harness, write_config

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], stdin: str = "", monkeypatch=None) -> int:
    parser = argparse.ArgumentParser(prog="edge")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return args.func(args)


def test_user_and_token_commands(tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path)
    c = ["-c", str(cfg)]
    assert run(["user", "add", "alice", "--role", "manager", "--password-stdin", *c], PASSWORD + "\n", monkeypatch) == 0
    assert run(["user", "add", "bob", "--role", "installer", "--password-stdin", *c], "short\n", monkeypatch) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert run(["user", "add", "alice", "--role", "manager", "--password-stdin", *c], PASSWORD + "\n", monkeypatch) == 1
    assert "exists already" in capsys.readouterr().err
    assert run(["user", "add", "bob", "--role", "installer", "--password-stdin", *c], PASSWORD + "\n", monkeypatch) == 0
    assert run(["user", "role", "alice", "installer", *c]) == 0
    capsys.readouterr()
    assert run(["user", "list", *c]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["alice", "installer"], ["bob", "installer"]]
    assert run(["token", "add", "prometheus", *c]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("edge_")
    store = Store(tmp_path / "data" / "edge.db")
    acc = Accounts(store)
    assert acc.check_login("alice", PASSWORD) == {"name": "alice", "role": "installer"}
    assert acc.check_login("alice", PASSWORD + "x") is None
    assert acc.token_user(token)["role"] == "manager"
    store.close()
    assert run(["token", "revoke", "prometheus", *c]) == 0
    assert run(["token", "revoke", "prometheus", *c]) == 1
    assert run(["user", "delete", "alice", *c]) == 0
    assert run(["user", "delete", "bob", *c]) == 1  # the last installer stays
    assert "last installer" in capsys.readouterr().err
    assert run(["user", "passwd", "nobody", "--password-stdin", *c], PASSWORD + "\n", monkeypatch) == 1


def test_bad_config_is_reported(tmp_path, capsys):
    bad = tmp_path / "edge.yaml"
    bad.write_text("gateway: {id: x}\n")
    assert run(["user", "list", "-c", str(bad)]) == 2
    assert "required key is missing" in capsys.readouterr().err


async def test_user_added_by_the_real_command_can_log_in_to_a_running_gateway(tmp_path, monkeypatch):
    h = await start_harness(tmp_path, monkeypatch)
    try:
        proc = subprocess.run([sys.executable, "-m", "edge.cli", "user", "add", "chen", "--role", "manager",
                               "--password-stdin", "-c", str(h.config_path)], input=PASSWORD + "\n", text=True,
                              capture_output=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "user chen (manager) added" in proc.stdout
        c = await h.client()
        status, me = await c.login("chen")
        assert status == 200 and me["role"] == "manager"
    finally:
        await h.stop()
