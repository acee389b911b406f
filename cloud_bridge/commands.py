"""Downlink commands on .../cmd/{name}: validate, execute, reply on .../reply/{name} (or the MQTT 5 Response
Topic, if it lies in this gateway's reply namespace) with the request's Correlation Data.

Every rejection (unknown, malformed, expired, unauthorised, oversized, bad arguments) gets an error reply and
one log line, and is counted; nothing a command contains can raise out of here.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge.events import EventError, format_ts, parse_ts

from .aio import publish_properties, user_properties
from .models import ARGS, COMMANDS, Command, Reply, ReplyError, ResendResult

if TYPE_CHECKING:
    from .uplink import Uplink

log = logging.getLogger("cloud_bridge.commands")


class Rejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class CommandHandler:
    def __init__(self, uplink: "Uplink"):
        self.up = uplink
        self.ok = collections.Counter()
        self.rejected = collections.Counter()
        self._tasks: set[asyncio.Task] = set()
        key = uplink.cfg.command_key
        self._key = key.resolve().encode() if key is not None else None

    def health(self) -> dict:
        return {"ok": dict(self.ok), "rejected": dict(self.rejected)}

    # ---- entry (paho callback, event loop thread) ------------------------------------------------------
    def on_message(self, msg) -> None:
        up = self.up
        topic = msg.topic if isinstance(msg.topic, str) else str(msg.topic)
        name = topic.rsplit("/", 1)[-1] if topic.startswith(up.topics.base + "/cmd/") else ""
        props = getattr(msg, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        reply_to = self._reply_topic(name or "unknown", response_topic)
        cmd_id = None
        try:
            cmd, args = self._validate(name, msg, props)
            cmd_id = cmd.id
        except Rejected as r:
            self._reject(name or topic, r, reply_to, correlation, cmd_id)
            return
        task = asyncio.get_running_loop().create_task(self._execute(name, cmd, args, reply_to, correlation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply_topic(self, name: str, response_topic: str | None) -> str:
        default = self.up.topics.reply(name if name in COMMANDS else "unknown")
        if not response_topic:
            return default
        if response_topic.startswith(self.up.topics.reply_prefix) and "#" not in response_topic \
                and "+" not in response_topic:
            return response_topic
        log.warning("command response topic outside this gateway's reply namespace; replying on the default",
                    extra={"response_topic": response_topic, "reply_topic": default})
        return default

    def _validate(self, name: str, msg, props) -> tuple[Command, Any]:
        up = self.up
        payload: bytes = msg.payload or b""
        if getattr(msg, "retain", False):
            raise Rejected("expired", "retained commands are refused (a stale command must not run on reconnect)")
        if len(payload) > up.cfg.command_max_bytes:
            raise Rejected("too_large", f"command is {len(payload)} bytes; the limit is {up.cfg.command_max_bytes}")
        if name not in COMMANDS:
            raise Rejected("unknown_command", f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
        if name not in up.cfg.commands:
            raise Rejected("unauthorised", f"command {name!r} is not enabled on this gateway")
        if self._key is not None:
            sig = user_properties(props).get("signature", "")
            want = hmac.new(self._key, msg.topic.encode() + b"\n" + payload, hashlib.sha256).hexdigest()
            if not sig or not hmac.compare_digest(sig.lower(), want):
                raise Rejected("unauthorised", "missing or wrong command signature")
        try:
            data = json.loads(payload.decode("utf-8")) if payload.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise Rejected("malformed", f"command is not UTF-8 JSON: {exc}") from None
        if not isinstance(data, dict):
            raise Rejected("malformed", "command must be a JSON object")
        try:
            cmd = Command.model_validate(data)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise Rejected("malformed", f"{'.'.join(map(str, e['loc'])) or 'command'}: {e['msg']}") from None
        now = up.ctx.clock.time_ms()
        try:
            if cmd.expires_at and parse_ts(cmd.expires_at) < now:
                raise Rejected("expired", f"command expired at {cmd.expires_at}")
            if cmd.issued_at and now - parse_ts(cmd.issued_at) > up.cfg.command_max_age_s * 1000:
                raise Rejected("expired", f"command issued at {cmd.issued_at} is older than "
                                          f"{up.cfg.command_max_age_s:g}s")
        except EventError as exc:
            raise Rejected("malformed", str(exc)) from None
        try:
            args = ARGS[name].model_validate(cmd.args)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise Rejected("bad_args", f"args.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
        return cmd, args

    # ---- replies ---------------------------------------------------------------------------------------------
    def _reply(self, name: str, topic: str, correlation: bytes | None, cmd_id: str | None, *,
               result: dict | None = None, error: ReplyError | None = None) -> None:
        up = self.up
        r = Reply(ok=error is None, command=name if name in COMMANDS else "unknown", gateway_id=up.config.gateway.id,
                  ts=format_ts(up.ctx.clock.time_ms()), id=cmd_id, result=result, error=error)
        props = publish_properties(content_type="application/json", correlation=correlation,
                                   expiry_s=up.cfg.reply_expiry_s or None)
        up.publish_aux(topic, r.model_dump_json(exclude_none=True).encode(), props=props, label="reply")

    def _reject(self, name: str, r: Rejected, topic: str, correlation, cmd_id) -> None:
        self.rejected[r.code] += 1
        log.warning("command rejected", extra={"command": name[:80], "code": r.code, "reason": r.message})
        self._reply(name, topic, correlation, cmd_id, error=ReplyError(code=r.code, message=r.message))

    async def _execute(self, name: str, cmd: Command, args, topic: str, correlation) -> None:
        try:
            result = await getattr(self, f"_cmd_{name}")(args)
        except Rejected as r:
            self._reject(name, r, topic, correlation, cmd.id)
            return
        except Exception as exc:  # a failing command is reported, never crashes the uplink
            log.exception("command failed", extra={"command": name})
            self._reject(name, Rejected("failed", f"{type(exc).__name__}: {exc}"), topic, correlation, cmd.id)
            return
        self.ok[name] += 1
        log.info("command done", extra={"command": name, "id": cmd.id})
        self._reply(name, topic, correlation, cmd.id, result=result)

    # ---- commands ---------------------------------------------------------------------------------------------
    async def _cmd_ping(self, args) -> dict:
        return {"pong": True}

    async def _cmd_get_status(self, args) -> dict:
        up = self.up
        st = await up._stats()
        status = json.loads(up._status("online" if up.connected else "offline", st))
        return {"status": status, "health": json.loads(json.dumps(up.health(), default=str))}

    async def _cmd_resend(self, args) -> dict:
        up = self.up
        if args.to_seq < args.from_seq:
            raise Rejected("bad_args", "to_seq must be >= from_seq")
        if args.to_seq - args.from_seq + 1 > up.cfg.resend_max_span:
            raise Rejected("bad_args", f"range spans more than {up.cfg.resend_max_span} seqs; ask in parts")
        if up._resend_total > 10 * up.cfg.resend_max_span:
            raise Rejected("refused", "too many resends queued; try again later")
        store = up.ctx.store
        info = await store.call(_classify, store, args.from_seq, args.to_seq)
        up.queue_resend(info["sent"])
        log.info("resend queued", extra={"from_seq": args.from_seq, "to_seq": args.to_seq, "queued": info["queued"],
                                         "evicted": info["evicted"][:5], "unavailable": info["unavailable"][:5]})
        return ResendResult(queued=info["queued"], evicted=info["evicted"], unavailable=info["unavailable"],
                            not_yet_assigned=info["not_yet_assigned"], pending=info["pending"]).model_dump()

    async def _cmd_reload_config(self, args) -> dict:
        fn = self.up.ctx.services.get("reload_config")
        if fn is None:
            raise Rejected("not_supported", "this gateway has no config reload service")
        result = fn()
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, dict):
            return json.loads(json.dumps(result, default=str))
        return {"result": None if result is None else str(result)}

    async def _cmd_snapshot(self, args) -> dict:
        cams = self.up.ctx.services.get("cameras")
        if cams is None:
            raise Rejected("no_cameras", "this gateway has no cameras")
        fn = getattr(cams, "snapshot_jpeg", None)
        if fn is None:
            raise Rejected("not_supported", "the camera service cannot take snapshots")
        if inspect.iscoroutinefunction(fn):
            jpeg = await fn(args.camera)
        else:
            jpeg = await asyncio.get_running_loop().run_in_executor(None, fn, args.camera)
        if not jpeg:
            raise Rejected("failed", f"camera {args.camera!r} returned no image")
        return await self.up.media.upload_snapshot(args.camera, bytes(jpeg))


def _classify(store, a, b):
    from .outbox import classify_range

    return classify_range(store, a, b)
