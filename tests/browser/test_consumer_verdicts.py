"""Each verdict of the consumer's page in real headless Chromium, on a phone and on a desktop:
its headline and icon in view, the state at the top, the language link clear of the card,
two columns on a desktop, a screenshot each (test-artifacts/screenshots/), and an axe-core
accessibility check with no serious or critical violation. The entry page likewise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.app.test_consumer_entry import VERDICTS

# Chromium and a served app (its own threads and connections): slow, and data committed.
pytestmark = [pytest.mark.slow, pytest.mark.committed]

ROOT = Path(__file__).resolve().parents[2]
#: axe-core from the npm registry, fetched by scripts/bootstrap.sh (AXE_CORE_JS overrides).
AXE_CORE = Path(os.environ.get("AXE_CORE_JS") or ROOT / ".cache/axe-core-4.14.1/package/axe.min.js")


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_CORE.exists():
        pytest.fail(
            f"{AXE_CORE} is missing: ./scripts/bootstrap.sh fetches axe-core (npm pack axe-core)",
            pytrace=False,
        )
    return AXE_CORE.read_text(encoding="utf-8")


def serious_violations(page, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is (WCAG 2.1 A and AA and
    best practices). Injected through the DevTools protocol: the page's own policy allows
    its own scripts only."""
    page.evaluate(axe_source + "\n;void 0")
    found = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v =>
              ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""
    )
    return [
        json.dumps(v, ensure_ascii=False) for v in found if v["impact"] in ("serious", "critical")
    ]


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("look", list(VERDICTS))
def test_each_verdict_reads_well_on_a_phone_and_a_desktop(
    client, make, world, live_server, new_page, screenshot, axe_source, look, viewport
):
    setup, status, zh_words, _ = VERDICTS[look]
    path = setup(client, make, world)
    page = new_page(viewport)
    response = page.goto(live_server.url_for(path))
    assert response.status == status
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-look", look)
    expect(verdict.locator("h1")).to_contain_text(zh_words)
    expect(verdict.locator(f'svg[data-icon="{look}"]')).to_be_visible()
    expect(verdict.locator("ol.advice li").first).to_be_visible()
    height = page.viewport_size["height"]
    assert verdict.locator("h1").bounding_box()["y"] < height / 2  # the verdict comes first
    if status == 200:
        now = verdict.locator("#now")
        expect(now).to_contain_text("当前状态")
        assert now.bounding_box()["y"] + now.bounding_box()["height"] < height  # first screen
    header = page.locator("header.issuer")
    expect(header).to_contain_text("商品追溯公共服务平台")
    expect(page.locator("footer.issuer")).to_contain_text("12315")
    lang = page.locator("header.issuer .lang a")
    assert not boxes_overlap(lang.bounding_box(), verdict.bounding_box())
    # No sideways scroll. A phone's browser widens its layout to fit content that sticks out
    # (innerWidth grows with it), so both are held to the viewport's own width.
    width = page.viewport_size["width"]
    assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
        width,
        width,
    ]
    if viewport == "desktop" and status == 200:
        journey = page.locator("#journey").bounding_box()
        card = verdict.bounding_box()
        assert journey["x"] > card["x"] + card["width"]  # a second column, beside the verdict
    screenshot(page)
    assert serious_violations(page, axe_source) == []
    # In English too: longer words, the same width (a long code checked once overflowed).
    english = page.goto(live_server.url_for(path + "?lang=en"))
    assert english.status == status
    expect(page.locator("#verdict h1")).to_contain_text(VERDICTS[look][3])
    assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
        width,
        width,
    ]
    screenshot(page, "en")


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_entry_page_reads_well_and_takes_a_typed_code(
    make, live_server, new_page, screenshot, axe_source, viewport
):
    serial = make.codes(make.batch(), 1)[0]
    page = new_page(viewport)
    page.goto(live_server.url_for("/"))
    expect(page.locator("h1")).to_contain_text("查询商品追溯码")
    screenshot(page)
    assert serious_violations(page, axe_source) == []
    page.fill("#code", " ".join(serial[i : i + 4] for i in range(0, 16, 4)).lower())
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#verdict")).to_have_attribute("data-look", "genuine")
    assert page.url == live_server.url_for(f"/t/{serial}")
    page.goto(live_server.url_for("/"))
    page.fill("#code", "ABC")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#code-error")).to_contain_text("16 位")
    screenshot(page, "typo")
    assert serious_violations(page, axe_source) == []


def test_the_public_credit_page_reads_well(world, live_server, page, screenshot, axe_source):
    page.goto(live_server.url_for(f"/credit/merchant/{world['merchant']}"))
    expect(page.locator("#credit")).to_contain_text("信用等级")
    screenshot(page)
    assert serious_violations(page, axe_source) == []


def camera_film(path: Path, text: str, width: int = 640, height: int = 480) -> Path:
    """A still Y4M film of the QR code of ``text``, for Chromium's fake camera."""
    import io

    from PIL import Image

    from app.labels import qr_png

    qr = Image.open(io.BytesIO(qr_png(text, box_size=8))).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(qr, ((width - qr.width) // 2, (height - qr.height) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2)
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + frame.tobytes() + chroma + chroma)
    return path


def test_the_phones_camera_reads_a_qr_code_in_the_page(
    browser, make, live_server, screenshot, axe_source, tmp_path
):
    """With a camera (Chromium's fake one, filming a label's QR code), does the entry page
    decode the code in the page, with the decoder the app ships (headless Chromium on Linux
    has no BarcodeDetector), and open the unit's page?"""
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS

    serial = make.codes(make.batch(), 1)[0]
    uri = make.app.test_client().get(f"/api/v1/codes/{serial}").get_json()["uri"]
    film = camera_film(tmp_path / "qr.y4m", uri)
    with_camera = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={film}",
        ],
    )
    try:
        context = with_camera.new_context(**VIEWPORTS["phone"], locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live_server.url_for("/"))
        assert page.evaluate("'BarcodeDetector' in window") is False  # ZXing does the work
        page.locator("#scan-start").click()
        # 30 s: alone it reads the code in about 3 s; once in a full CI run on a slow machine
        # the page was still waiting for the code after 15 s (the decoder's WebAssembly is
        # compiled on first use, and the fake camera's frames come as the CPU allows).
        expect(page.locator("#verdict")).to_have_attribute("data-look", "genuine", timeout=30_000)
        assert page.url.endswith("/21/" + serial)
        screenshot(page)
        assert errors == []
    finally:
        with_camera.close()
