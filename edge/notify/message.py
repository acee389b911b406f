"""What a pushed message says: the facts of one alert change, rendered per channel as text or markdown.

The facts are stored in the push outbox when the alert changes; rendering happens at send time so a
signature timestamp is always fresh and a message in the outbox stays readable in the console.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from edge.web.i18n import kind_name, t


def local_time(ts_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def headline(f: dict, lang: str) -> str:
    sev = t(lang, f"severity.{f.get('severity', 'warning')}")
    what = kind_name(lang, f.get("alert_kind", ""))
    state = f.get("state", "raised")
    head = f"【{sev}】{what}" if lang == "zh" else f"[{sev.upper()}] {what}"
    if f.get("purpose") == "escalation":
        head = t(lang, "push.escalation", minutes=_num(f.get("escalate_after_min"))) + " " + head
    elif f.get("purpose") == "test":
        head = t(lang, "push.test") + " " + head
    elif state != "raised":
        head += " · " + t(lang, f"state.{state}")
    return head


def lines(f: dict, lang: str) -> list[tuple[str, str]]:
    """(label, value) pairs below the headline."""
    out = [(t(lang, "push.what"), _one_line(f.get("title", "")))]
    if f.get("place"):
        out.append((t(lang, "push.place"), f["place"]))
    out.append((t(lang, "push.time"), local_time(int(f["ts_ms"]), f.get("tz", "Asia/Shanghai"))))
    if f.get("compound"):
        out.append((t(lang, "push.compound"), f["compound"]))
    if f.get("actor"):
        out.append((t(lang, "push.actor"), f["actor"]))
    if f.get("note"):
        out.append((t(lang, "push.note"), _one_line(f["note"])))
    if f.get("current_state") and f.get("current_state") != f.get("state"):
        out.append((t(lang, "push.now"), t(lang, f"state.{f['current_state']}")))
    return out


def plain_text(f: dict, lang: str) -> str:
    sep = "：" if lang == "zh" else ": "
    body = [headline(f, lang)] + [f"{k}{sep}{v}" for k, v in lines(f, lang)]
    if f.get("link"):
        body.append(f"{t(lang, 'push.open')}{sep}{f['link']}")
    return "\n".join(body)


def markdown(f: dict, lang: str, flavour: str) -> str:
    """WeCom and DingTalk markdown differ a little: WeCom has <font color>, DingTalk wants blank lines."""
    sep = "：" if lang == "zh" else ": "
    head = headline(f, lang)
    if flavour == "wecom":
        color = "warning" if f.get("severity") == "critical" and f.get("state") == "raised" else "info"
        parts = [f'### <font color="{color}">{head}</font>']
        parts += [f"> {k}{sep}{v}" for k, v in lines(f, lang)]
        if f.get("link"):
            parts.append(f"[{t(lang, 'push.open')}]({f['link']})")
        return "\n".join(parts)
    parts = [f"### {head}"] + [f"- {k}{sep}{v}" for k, v in lines(f, lang)]
    if f.get("link"):
        parts.append(f"[{t(lang, 'push.open')}]({f['link']})")
    return "\n\n".join(parts)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _num(v) -> str:
    if v is None:
        return "?"
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"
