"""Console accounts: users (scrypt password hashes), sessions, API tokens and the first-start setup token.

Everything secret is stored only as a hash: passwords with hashlib.scrypt (a memory-hard KDF from the
standard library, so no extra dependency), session ids, API tokens and the setup token with SHA-256 (they
are long random strings, so a fast hash is enough). All methods are synchronous; call them through
`await store.call(...)` from the event loop.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from edge.store import migrations

ROLES = ("manager", "installer")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1  # ~16 MiB, ~50 ms per check on a gateway-class CPU
TOKEN_PREFIX = "edge_"
SETUP_KEY = "web.setup_token"

migrations.register("web", [
    (1, "console users, sessions, api tokens", """
CREATE TABLE web_users (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  pw_hash TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  last_login_ms INTEGER,
  language TEXT
);
CREATE TABLE web_sessions (
  id_hash TEXT PRIMARY KEY,
  user TEXT NOT NULL REFERENCES web_users(name) ON DELETE CASCADE,
  csrf TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  ip TEXT
);
CREATE INDEX web_sessions_user ON web_sessions (user);
CREATE TABLE web_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  created_by TEXT,
  last_used_ms INTEGER
)
"""),
])


class AuthError(ValueError):
    """A request the account store refuses; the message is safe to show to the user."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, dk = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(dk)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A valid hash of a random password: checked when the user name is unknown, so a failed login takes
# the same time whether or not the account exists (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_new_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AuthError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > 256:
        raise AuthError("the password is too long (at most 256 characters)")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise AuthError("a user name is 1-64 letters, digits or . _ @ - and starts with a letter or digit")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")


class Accounts:
    def __init__(self, store, session_hours: float = 12):
        self.store = store
        self.session_ms = int(session_hours * 3600_000)

    # ---- users -------------------------------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.store.transaction() as conn:
            return conn.execute("SELECT count(*) FROM web_users").fetchone()[0]

    def add_user(self, name: str, role: str, password: str, pw_hash: str | None = None) -> dict[str, Any]:
        """`pw_hash`: already hashed (the console hashes off the store thread: scrypt takes ~50 ms)."""
        check_name(name)
        check_role(role)
        check_new_password(password)
        pw = pw_hash or hash_password(password)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM web_users WHERE name = ?", (name,)).fetchone():
                raise AuthError(f"user {name!r} exists already")
            conn.execute("INSERT INTO web_users (name, role, pw_hash, created_ms) VALUES (?, ?, ?, ?)",
                         (name, role, pw, self.store.now_ms()))
        return {"name": name, "role": role}

    def users(self) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            return [dict(r) for r in conn.execute("SELECT name, role, created_ms, last_login_ms FROM web_users "
                                                  "ORDER BY name")]

    def get_user(self, name: str) -> dict[str, Any] | None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT name, role, created_ms, last_login_ms, language FROM web_users WHERE name = ?",
                               (name,)).fetchone()
        return dict(row) if row else None

    def delete_user(self, name: str) -> None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT role FROM web_users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise AuthError(f"no user {name!r}")
            if row["role"] == "installer":
                left = conn.execute("SELECT count(*) FROM web_users WHERE role = 'installer' AND name != ?",
                                    (name,)).fetchone()[0]
                if left == 0:
                    raise AuthError("cannot delete the last installer account")
            conn.execute("DELETE FROM web_sessions WHERE user = ?", (name,))
            conn.execute("DELETE FROM web_users WHERE name = ?", (name,))

    def set_password(self, name: str, password: str, pw_hash: str | None = None) -> None:
        check_new_password(password)
        pw = pw_hash or hash_password(password)
        with self.store.transaction() as conn:
            cur = conn.execute("UPDATE web_users SET pw_hash = ? WHERE name = ?", (pw, name))
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")
            conn.execute("DELETE FROM web_sessions WHERE user = ?", (name,))  # other devices must log in again

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        with self.store.transaction() as conn:
            if conn.execute("UPDATE web_users SET role = ? WHERE name = ?", (role, name)).rowcount == 0:
                raise AuthError(f"no user {name!r}")

    def login_row(self, name: str) -> dict[str, Any] | None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT name, role, pw_hash FROM web_users WHERE name = ?",
                               (name,)).fetchone() if isinstance(name, str) else None
        return dict(row) if row else None

    def record_login(self, name: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE web_users SET last_login_ms = ? WHERE name = ?", (self.store.now_ms(), name))

    def check_login(self, name: str, password: str) -> dict[str, Any] | None:
        """Synchronous form (CLI, tests); the console uses check_login_async."""
        row = self.login_row(name)
        if not verify_password(password if isinstance(password, str) else "", row["pw_hash"] if row else _DUMMY_HASH) \
                or row is None:
            return None
        self.record_login(name)
        return {"name": row["name"], "role": row["role"]}

    async def check_login_async(self, name: str, password: str) -> dict[str, Any] | None:
        """The scrypt check runs in a worker thread, not on the store thread, so a burst of logins can never
        hold up event commits."""
        import asyncio

        row = await self.store.call(self.login_row, name)
        ok = await asyncio.to_thread(verify_password, password if isinstance(password, str) else "",
                                     row["pw_hash"] if row else _DUMMY_HASH)
        if not (ok and row):
            return None
        await self.store.call(self.record_login, name)
        return {"name": row["name"], "role": row["role"]}

    async def hash_async(self, password: str) -> str:
        import asyncio

        check_new_password(password)
        return await asyncio.to_thread(hash_password, password)

    # ---- sessions ----------------------------------------------------------------------------------------------
    def new_session(self, user: str, ip: str | None) -> tuple[str, str]:
        """Returns (session id for the cookie, CSRF token). Only the id's hash is stored."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self.store.now_ms()
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM web_sessions WHERE last_seen_ms < ?", (now - self.session_ms,))
            conn.execute("INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?, ?)", (_sha256(sid), user, csrf, now, now, ip))
        return sid, csrf

    def session(self, sid: str) -> dict[str, Any] | None:
        """The session's user, role and CSRF token, or None if unknown/expired. Touches last_seen (at most
        once a minute, to keep writes rare)."""
        if not sid or len(sid) > 128:
            return None
        now = self.store.now_ms()
        h = _sha256(sid)
        with self.store.transaction() as conn:
            row = conn.execute("SELECT s.user, s.csrf, s.last_seen_ms, u.role, u.language FROM web_sessions s "
                               "JOIN web_users u ON u.name = s.user WHERE s.id_hash = ?", (h,)).fetchone()
            if row is None:
                return None
            if now - row["last_seen_ms"] > self.session_ms:
                conn.execute("DELETE FROM web_sessions WHERE id_hash = ?", (h,))
                return None
            if now - row["last_seen_ms"] > 60_000:
                conn.execute("UPDATE web_sessions SET last_seen_ms = ? WHERE id_hash = ?", (now, h))
        return {"name": row["user"], "role": row["role"], "csrf": row["csrf"], "via": "session"}

    def end_session(self, sid: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM web_sessions WHERE id_hash = ?", (_sha256(sid),))

    # ---- API tokens (machine clients: Prometheus, county tools) ------------------------------------------------
    def add_token(self, name: str, role: str, created_by: str | None) -> dict[str, Any]:
        check_name(name)
        check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        tid = secrets.token_hex(6)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM web_tokens WHERE name = ?", (name,)).fetchone():
                raise AuthError(f"a token named {name!r} exists already")
            conn.execute("INSERT INTO web_tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (tid, name, role, _sha256(token), self.store.now_ms(), created_by))
        return {"id": tid, "name": name, "role": role, "token": token}

    def tokens(self) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            return [dict(r) for r in conn.execute("SELECT id, name, role, created_ms, created_by, last_used_ms "
                                                  "FROM web_tokens ORDER BY name")]

    def revoke_token(self, token_id: str) -> None:
        with self.store.transaction() as conn:
            if conn.execute("DELETE FROM web_tokens WHERE id = ? OR name = ?", (token_id, token_id)).rowcount == 0:
                raise AuthError(f"no token {token_id!r}")

    def token_user(self, token: str) -> dict[str, Any] | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        now = self.store.now_ms()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT id, name, role, last_used_ms FROM web_tokens WHERE token_hash = ?",
                               (_sha256(token),)).fetchone()
            if row is None:
                return None
            if row["last_used_ms"] is None or now - row["last_used_ms"] > 60_000:
                conn.execute("UPDATE web_tokens SET last_used_ms = ? WHERE id = ?", (now, row["id"]))
        return {"name": f"token:{row['name']}", "role": row["role"], "csrf": None, "via": "token"}

    # ---- first-start setup token -----------------------------------------------------------------------------
    def new_setup_token(self, hours: float) -> str:
        token = secrets.token_urlsafe(24)
        self.store.kv_set(SETUP_KEY, {"hash": _sha256(token), "expires_ms": self.store.now_ms() + int(hours * 3600_000)})
        return token

    def setup_token_valid(self, token: str) -> bool:
        rec = self.store.kv_get(SETUP_KEY)
        if not rec or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(rec["hash"], _sha256(token)) and self.store.now_ms() < rec["expires_ms"]

    def complete_setup(self, token: str, name: str, password: str, pw_hash: str | None = None) -> dict[str, Any]:
        """Create the first installer account with the one-time token; the token dies with it."""
        if self.count_users() > 0:
            raise AuthError("setup is already done; log in instead")
        if not self.setup_token_valid(token):
            raise AuthError("the setup link is invalid or has expired (restart the gateway for a new one, "
                            "or use `edge user add NAME --role installer`)")
        user = self.add_user(name, "installer", password, pw_hash)
        self.store.kv_set(SETUP_KEY, None)
        return user
