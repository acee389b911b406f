"""The console in real headless Chromium (Debian `chromium` driven by Playwright), against a running gateway:
log in, see an alert raised by a simulator appear live, open its evidence, acknowledge it; draw a fire-lane
zone on a camera snapshot and save it; no console errors; works on a phone-sized screen.
Screenshots of the main pages go to docs/images/ (palette PNGs, each < 200 KB; refresh them with
EDGE_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_web_browser.py)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from edge.config import load_config
from test_web_harness import PASSWORD, start_harness, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
MAX_PNG = 195_000

import playwright.async_api as playwright_api  # noqa: E402  (a test extra: ./run test installs it)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not shutil.which("chromium"),
                                 reason="Debian chromium is not installed (./run test installs it with apt-get)")]


def save_png(png: bytes, name: str) -> None:
    """Shrink a screenshot to a palette PNG (the photos in it would make a plain PNG too big for the repo)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colors in (192, 128, 96, 64, 48):
        out = io.BytesIO()
        img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, "PNG", optimize=True)
        if out.tell() < MAX_PNG:
            break
    assert out.tell() < MAX_PNG, f"{name} is {out.tell()} bytes"
    # docs/images is refreshed on request (EDGE_UPDATE_SCREENSHOTS=1) or when a picture is missing, so a
    # normal test run leaves the working tree clean
    target = IMAGES / name
    if os.environ.get("EDGE_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        IMAGES.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out.getvalue())


async def shot(page, name: str, full_page: bool = False) -> None:
    await page.evaluate("document.getElementById('toast').className = 'toast'")  # no toast over the content
    await page.wait_for_timeout(300)
    save_png(await page.screenshot(full_page=full_page), name)


@pytest.fixture
async def gateway(tmp_path, monkeypatch):
    h = await start_harness(tmp_path, monkeypatch)
    calls = []
    h.ctx.services["zones_changed"] = lambda cfg: calls.append([z.id for z in cfg.zones])
    h.zone_calls = calls
    await h.add_user("wang", "installer")
    h.publish_frame()
    for b, pct in (("a-kitchen", 93.0), ("a-other", 41.0)):
        h.ctx.emit_new("bin.level", "bins-bus-a", {"bin": b, "station": "station-a", "fill_pct": pct})
    h.ctx.emit_new("device.online", "bins-bus-a", {"device": "bins-bus-a", "device_type": "modbus_level"})
    await h.ctx.store.call(h.ctx.store.set_device_state, "bins-bus-a", "modbus_level", "online", {}, True)
    yield h
    await h.stop()


async def test_console_in_headless_chromium(gateway):
    h = gateway
    problems: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
            page = await ctx.new_page()
            page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)

            # ---- log in (redirected to the login page first) --------------------------------------------------
            await page.goto(h.base + "/#/alerts")
            await page.wait_for_url("**/login#/alerts")
            await page.wait_for_selector("body[data-ready='1']")
            assert await page.inner_text("h1") == "登录网关控制台"
            await page.fill("#name", "wang")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(h.base + "/#/alerts")
            await page.wait_for_selector("body[data-ready='1']")
            await page.wait_for_selector("#alert-list .muted")  # no alerts yet
            await page.wait_for_selector(".live.on")  # the live stream is connected
            await page.evaluate("window.__sameDocument = true")

            # ---- an alert raised by a simulator shows up without reload ---------------------------------------
            alert = await h.raise_fire_lane()
            row = await page.wait_for_selector(f".alert-row[data-id='{alert['id']}']", timeout=10_000)
            assert "消防通道堵塞" in await row.inner_text() and "3号楼消防通道" in await row.inner_text()
            assert await page.evaluate("window.__sameDocument") is True
            await page.wait_for_timeout(300)  # let the toast and the highlight settle for the screenshot
            save_png(await page.screenshot(), "console-alerts.png")

            # ---- evidence, then acknowledge ---------------------------------------------------------------------
            await row.click()
            await page.wait_for_selector("#alert-detail img.evidence")
            await page.wait_for_function("() => { const i = document.querySelector('img.evidence');"
                                         " return i && i.complete && i.naturalWidth === 751; }")
            await page.click(".thumb")
            await page.wait_for_selector(".lightbox img")
            await page.wait_for_function("() => document.querySelector('.lightbox img').naturalWidth > 0")
            await page.keyboard.press("Escape")
            await page.fill("#note", "已通知保安挪车")
            await shot(page, "console-alert-detail.png", full_page=True)
            await page.click("#btn-ack")
            await page.wait_for_selector("#alert-detail h2 .badge.warn")  # "已确认"
            got = await h.ctx.store.call(h.ctx.services["alerts"].get, alert["id"])
            assert got["state"] == "acknowledged" and got["acked_by"] == "wang" and got["note"] == "已通知保安挪车"
            assert await page.query_selector("#btn-ack") is None

            # ---- draw a fire-lane zone on a fresh snapshot and save it ------------------------------------------
            await page.click("#nav-zones")
            await page.wait_for_function("() => { const i = document.getElementById('zone-snapshot');"
                                         " return i && i.complete && i.naturalWidth === 640; }")
            await page.click("#zone-new")
            await page.fill("#zone-id", "lane-7")
            await page.fill("#zone-name", "7号楼消防通道")
            await page.select_option("#zone-type", "fire_lane")
            box = await page.locator("#zone-canvas").bounding_box()
            corners = [(0.15, 0.50), (0.60, 0.45), (0.70, 0.90), (0.10, 0.95)]
            for fx, fy in corners:
                await page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            # move the first corner by dragging it
            await page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + 0.50 * box["height"])
            await page.mouse.down()
            await page.mouse.move(box["x"] + 0.20 * box["width"], box["y"] + 0.55 * box["height"], steps=5)
            await page.mouse.up()
            assert await page.inner_text("#zone-points") == "4 个顶点"
            assert await page.is_hidden(".stage .no-picture")
            assert "null" not in await page.inner_text("#view")
            await shot(page, "console-zone-editor.png")
            await page.click("#zone-save")
            await page.wait_for_selector("#zone-saved")
            assert "已保存并生效" in await page.inner_text("#zone-saved")
            cfg = load_config(h.config_path)
            zone = next(z for z in cfg.zones if z.id == "lane-7")
            assert zone.type == "fire_lane" and zone.camera == "cam-lane-1" and zone.name == "7号楼消防通道"
            want = [(0.20, 0.55)] + corners[1:]
            assert len(zone.polygon) == 4
            for (x, y), (wx, wy) in zip(zone.polygon, want):
                assert abs(x - wx) < 0.01 and abs(y - wy) < 0.01, zone.polygon
            assert "# the lane in front of building 3" in h.config_path.read_text(encoding="utf-8")
            assert h.zone_calls == [["lane-3", "lane-7"]]
            assert [z.id for z in h.ctx.config.zones] == ["lane-3", "lane-7"]

            # ---- the other pages render ------------------------------------------------------------------------
            await page.click("#nav-dashboard")
            await page.wait_for_function("() => { const i = document.querySelector('figure.camera img');"
                                         " return i && i.complete && i.naturalWidth > 0; }")
            await shot(page, "console-dashboard.png", full_page=True)
            await page.click("#nav-stations")
            await page.wait_for_selector(".station .fill.bad")  # a-kitchen at 93 %
            await shot(page, "console-stations.png", full_page=True)
            await page.click("#nav-events")
            await page.wait_for_selector("table.events tbody tr")
            await shot(page, "console-events.png")

            # ---- phone-sized screen ---------------------------------------------------------------------------
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                              device_scale_factor=1, locale="zh-CN")
            await phone.add_cookies(await ctx.cookies())
            ppage = await phone.new_page()
            ppage.on("console", lambda m: problems.append(f"phone console.{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
            ppage.on("pageerror", lambda e: problems.append(f"phone page error: {e}"))
            await ppage.goto(h.base + "/#/alerts")
            await ppage.wait_for_selector(f".alert-row[data-id='{alert['id']}']")
            assert await ppage.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(ppage, "console-phone-alerts.png")
            await ppage.goto(h.base + f"/#/alerts/{alert['id']}")
            await ppage.wait_for_function("() => { const i = document.querySelector('img.evidence');"
                                          " return i && i.complete && i.naturalWidth > 0; }")
            assert await ppage.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await phone.close()
            await ctx.close()
        finally:
            await browser.close()
    assert problems == []
