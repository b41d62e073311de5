"""`pumpctl ui` in a real browser: headless Chromium (Playwright) against a lockstep virtual
bench: a flex profile through the editor (refused for a hard and a soft limit, the override
confirmed, old and new compared, confirmed, written), the patient view, an occlusion and its
alarm acknowledged, time advanced and the history grown, calibration, a refill that does not
add up, a clinician bolus, then what the guard refuses (no token, another Host, another origin)
and that no page or reply carries a key. A screenshot of each page goes to build/ui-screenshots/.

One bench, app and browser per module (per xdist worker); each test first puts the pump in the
state it needs (`running`), so none depends on another having run before it."""
from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Optional

import pytest

from .conftest import NO_CHROMIUM, chromium_path, shot

pytestmark = pytest.mark.xdist_group("browser")  # one Chromium, one bench, beside the rest of the suite

if chromium_path() is None:  # one line for the whole module, saying how to get it
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

FLEX = [("00:00", 100), ("18:00", 400), ("22:00", 200)]
CONTINUOUS = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 200}
PATIENT = {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 180}
FLEX_PROGRAM = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex",
                "steps": [{"start": a, "rate_ug_per_day": r} for a, r in FLEX], "patient_bolus": PATIENT}


def running(ui: Any, program: Optional[dict[str, Any]] = None) -> None:
    """The pump as a test starts from: no fault, alarms acknowledged, delivering `program` (or
    the program it has; a continuous one on a new pump), no bolus running."""
    def go(pump: Any) -> None:
        pump.bench_fault("block-outlet", on=False)
        st = pump.status()
        if st["bolus"] or any(a["code"] == "OCCLUSION" for a in st["alarms"]):
            pump.bench_advance(15 * 60_000)  # the occlusion retry, and any bolus to its end
        pump.ack("all")
        if program is not None or pump.program_show().get("program") is None:
            pump.program_set(program or CONTINUOUS, confirm=True)
        if pump.status()["state"] != "running":
            pump.resume()
        assert pump.status()["state"] == "running"
    ui.session.run(go)


def program_on_pump(ui: Any) -> Optional[dict[str, Any]]:
    p: Optional[dict[str, Any]] = ui.session.run(lambda pump: pump.program_show()).get("program")
    return p


def go(page: Any, ui: Any, path: str) -> None:
    page.goto(f"http://127.0.0.1:{ui.port}{path}")
    page.wait_for_function("() => document.querySelector('#alarm-summary').textContent !== '…'")


@pytest.mark.safety("SR-024")
def test_flex_profile_through_the_editor_old_new_then_confirm(page: Any, ui: Any) -> None:
    running(ui, CONTINUOUS)
    go(page, ui, "/program")
    page.select_option("#drug", "baclofen")
    page.select_option("#concentration", "500")
    page.select_option("#mode", "flex")
    # The editor starts with one step at 00:00; the profile is drawn as the steps are typed.
    rows = page.locator("#steps tbody tr")
    rows.nth(0).locator('input[name="rate_ug_per_day"]').fill(str(FLEX[0][1]))
    for start, rate in FLEX[1:]:
        page.click("#add-step")
        row = rows.nth(rows.count() - 1)
        row.locator('input[name="start"]').fill(start)
        row.locator('input[name="rate_ug_per_day"]').fill(str(rate))
    page.click("#add-periodic")
    per = page.locator("#periodic tbody tr").nth(0)
    per.locator('input[name="time"]').fill("08:00")
    per.locator('input[name="dose_ug"]').fill("500")   # over the 100 µg soft limit: the pump says so
    per.locator('input[name="duration_min"]').fill("10")
    page.check("#pb-on")
    for k, v in (("dose_ug", 20), ("duration_min", 5), ("max_per_24h", 4), ("lockout_min", 180)):
        page.fill(f"#pb-{k}", str(v))
    assert page.locator("#profile-new path").count() >= 1  # the drawn 24 h profile
    assert page.locator("#profile-new rect").count() == 3   # one band per step

    # Hard limit first: 500 µg is over the 200 µg hard limit for a bolus: refused, no override offered.
    page.click("#check")
    page.wait_for_selector("#check-result.error")
    assert "hard limit" in page.inner_text("#check-result")
    assert page.locator("#check-result button").count() == 0
    # Soft limit: 150 µg needs the override bolus_dose, which the page offers to confirm.
    per.locator('input[name="dose_ug"]').fill("150")
    page.click("#check")
    page.wait_for_selector("#add-override-bolus_dose")
    refusal = page.inner_text("#check-result")
    assert 'it needs the override "bolus_dose"' in refusal and "SOFT_LIMIT" in refusal
    shot(page, "program-refused")
    page.click("#add-override-bolus_dose")   # ticks it and checks again
    page.wait_for_selector("#comparison:not([hidden])")

    # Old and new side by side, as the pump read them; nothing written before the confirm.
    table = page.inner_text("#compare")
    assert "current" in table and "new" in table and "flex" in table and "daily total" in table
    assert page.locator("#profile-old path, #profile-old rect").count() >= 1
    assert page.locator("#profile-checked rect").count() == 3
    assert "continuous" in table  # the current program
    assert page.is_disabled("#write")
    assert program_on_pump(ui) == dict(CONTINUOUS, overrides=[])  # nothing written yet
    shot(page, "program-comparison")
    page.check("#confirm")
    page.click("#write")
    page.wait_for_function("() => document.querySelector('#write-result').textContent.startsWith('Written')")
    assert "bolus_dose" in page.inner_text("#write-result")

    p = program_on_pump(ui)
    assert p is not None and p["mode"] == "flex" and p["concentration_ug_per_ml"] == 500
    assert [(s["start"], s["rate_ug_per_day"]) for s in p["steps"]] == FLEX
    assert p["periodic_boluses"] == [{"time": "08:00", "dose_ug": 150, "duration_min": 10}]
    assert p["patient_bolus"]["lockout_min"] == 180
    go(page, ui, "/")
    page.wait_for_function("() => document.querySelector('#w-state').textContent === 'RUNNING'")
    assert "baclofen at 500 µg/mL (flex)" in page.inner_text("main")
    shot(page, "status")


def test_an_edit_after_the_check_needs_a_new_check(page: Any, ui: Any) -> None:
    running(ui, FLEX_PROGRAM)
    go(page, ui, "/program")
    page.wait_for_selector("#steps tbody tr")
    page.click("#check")
    page.wait_for_selector("#comparison:not([hidden])")
    page.locator("#steps tbody tr").nth(0).locator('input[name="rate_ug_per_day"]').fill("120")
    assert page.is_hidden("#comparison") and page.is_disabled("#write")
    # And the server itself writes only a program the pump checked, with the confirmation.
    prog = dict(program_on_pump(ui) or {}, min_rate_ug_per_day=60)
    r = page.request.post(f"http://127.0.0.1:{ui.port}/api/program/set",
                          data=json.dumps({"program": prog, "digest": "0" * 64, "confirm": True}),
                          headers={"Content-Type": "application/json", "X-Pumpctl-Token": ui.guard.tokens["clinician"],
                                   "Origin": f"http://127.0.0.1:{ui.port}"})
    assert r.status == 422 and "was not checked" in r.json()["error"]["message"]
    assert (program_on_pump(ui) or {}).get("min_rate_ug_per_day") is None


def test_patient_view_offers_only_the_patient_bolus(browser: Any, ui: Any) -> None:
    running(ui, FLEX_PROGRAM)  # just programmed: the patient's lockout starts now
    ctx = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        pg = ctx.new_page()
        pg.goto(ui.url("patient"))
        pg.wait_for_function("() => document.querySelector('#pb-programmed').textContent !== '…'")
        assert "20 µg over 5 min" in pg.inner_text("#pb-programmed")
        assert [a.inner_text() for a in pg.locator("nav a").all()] == ["Patient view"]
        pg.click("#patient-bolus")  # just programmed: the lockout holds
        pg.wait_for_selector("#pb-result.warning")
        assert "Not now" in pg.inner_text("#pb-result") and "locked out" in pg.inner_text("#pb-result")
        shot(pg, "patient")
        # The patient's cookie opens nothing else.
        r = pg.request.get(f"http://127.0.0.1:{ui.port}/program")
        assert r.status == 403
        r = pg.request.post(f"http://127.0.0.1:{ui.port}/api/stop", data="{}",
                            headers={"Content-Type": "application/json", "X-Pumpctl-Token": ui.guard.tokens["patient"],
                                     "Origin": f"http://127.0.0.1:{ui.port}"})
        assert r.status == 403
        assert ui.session.run(lambda p: p.status())["state"] == "running"
    finally:
        ctx.close()


@pytest.mark.safety("SR-009", "SR-031")
def test_occlusion_shows_the_alarm_light_and_is_acknowledged(page: Any, ui: Any) -> None:
    running(ui)
    go(page, ui, "/bench")
    page.select_option("#fault", "block-outlet")
    page.click("#fault-on")
    page.wait_for_selector("#fault-result.okmsg")
    page.select_option("#until", "next-alarm")
    page.click("#advance-until")
    page.wait_for_function("() => document.querySelector('#advance-result').textContent.includes('OCCLUSION')")
    page.wait_for_function("() => document.querySelector('#light-red').dataset.state === 'flashing'")
    shot(page, "bench")
    go(page, ui, "/")
    page.wait_for_selector("#alarms tr.alarm-high")
    assert "OCCLUSION" in page.inner_text("#alarms") and "high" in page.inner_text("#alarms")
    assert page.get_attribute("#light-red", "data-state") == "flashing"
    assert "OCCLUSION" in page.inner_text("#alarm-summary")
    shot(page, "status-occlusion")
    # The sound: muted by default; unmuted it plays the high pattern; an audio pause silences
    # it while the light keeps flashing, as the pump's annunciator does.
    assert page.evaluate("Sound.playing") is None
    page.click("#sound-toggle")
    page.wait_for_function("() => Sound.playing === 'high' && Sound.nodes.length === 10")
    page.select_option("#pause-for", "2m")
    page.click("#pause")
    page.wait_for_selector("#alarm-result.okmsg")
    page.wait_for_function("() => Sound.playing === null && PUMP.status.words.audio_paused_ms > 0")
    assert page.get_attribute("#light-red", "data-state") == "flashing"
    assert "audio paused" in page.inner_text("#alarm-summary")
    page.click('#alarms button[data-code="OCCLUSION"]')
    page.wait_for_function("() => document.querySelector('#light-red').dataset.state === 'off'")
    alarms = ui.session.run(lambda p: p.alarms())["active"]
    assert [(a["code"], a["state"]) for a in alarms if a["code"] == "OCCLUSION"] in ([("OCCLUSION", "acknowledged")], [])
    # Clear the blockage and resume, so time can pass with therapy running.
    go(page, ui, "/bench")
    page.select_option("#fault", "block-outlet")
    page.click("#fault-clear")
    page.wait_for_selector("#fault-result.okmsg")
    page.fill("#advance-for", "2m")
    page.click("#advance")
    page.wait_for_selector("#advance-result.okmsg")
    go(page, ui, "/")
    page.click("#ack-all")
    page.wait_for_selector("#alarm-result.okmsg")
    page.click("#resume")
    page.wait_for_selector("#therapy-result.okmsg")
    assert ui.session.run(lambda p: p.status())["state"] == "running"


def test_advancing_time_grows_the_history(page: Any, ui: Any) -> None:
    running(ui)
    go(page, ui, "/history")
    page.select_option("#days", "7")
    page.wait_for_function("() => /\\d+ hours/.test(document.querySelector('#history-count').textContent)")
    before = int(page.inner_text("#history-count").split()[0])
    bars_before = page.locator("#history-plot rect.bar-delivered").count()
    go(page, ui, "/bench")
    page.click('button[data-advance="6h"]')
    page.wait_for_function("() => document.querySelector('#advance-result').textContent.startsWith('Advanced 6')")
    go(page, ui, "/history")
    page.select_option("#days", "7")
    page.wait_for_function(f"() => /\\d+ hours/.test(document.querySelector('#history-count').textContent) && "
                           f"parseInt(document.querySelector('#history-count').textContent) >= {before + 6}")
    after = int(page.inner_text("#history-count").split()[0])
    assert after >= before + 6
    assert page.locator("#history-plot rect.bar-delivered").count() >= bars_before + 6
    rows = ui.session.run(lambda p: p.history(1))
    assert sum(r["delivered_ug"] for r in rows[-6:]) > 0
    page.wait_for_selector("#log tbody tr")
    assert page.locator("#log tbody tr").count() >= 1 and "records" in page.inner_text("#log-span")
    page.wait_for_selector("#usage tbody tr")
    assert page.locator("#usage-plot rect").count() >= 1
    shot(page, "history")


def test_the_lab_guide_from_the_browser_calibrate_refill_bolus_settings(page: Any, ui: Any) -> None:
    """Parts 3 and 4 of the lab guide: stop, calibrate from the bench's scale, resume; a refill
    that does not add up; a clinician bolus over a soft limit; the settings; a bad entry."""
    running(ui)
    go(page, ui, "/")
    page.click("#stop")
    page.wait_for_selector("#therapy-result.okmsg")
    go(page, ui, "/setup")
    page.wait_for_selector("#drugs tbody tr")
    assert page.input_value('#settings-form [name="low_reservoir_ul"]') == "2000"
    page.click("#calibrate")
    page.wait_for_function("() => document.querySelector('#calibrate-result').textContent.startsWith('Stored')")
    assert "pL per step" in page.inner_text("#calibrate-result")
    page.fill('#settings-form [name="low_reservoir_ul"]', "2.5")
    page.click("#settings-save")
    page.wait_for_selector("#settings-result.error")
    assert "whole number of µL" in page.inner_text("#settings-result")
    page.fill('#settings-form [name="low_reservoir_ul"]', "3000")
    page.click("#settings-save")
    page.wait_for_selector("#settings-result.okmsg")
    assert ui.session.run(lambda p: p.settings())["low_reservoir_ul"] == 3000
    shot(page, "setup")
    go(page, ui, "/")
    page.click("#resume")
    page.wait_for_selector("#therapy-result.okmsg")

    go(page, ui, "/therapy")
    page.wait_for_function("() => document.querySelector('#refill-expected').textContent !== '…'")
    expected = ui.session.run(lambda p: p.status())["reservoir_ul"]
    assert f"{expected} µL" in page.inner_text("#refill-expected") and page.input_value("#withdrawn") != ""
    page.fill("#withdrawn", str(expected - 2500))  # 2.5 mL less than the pump expects: the mismatch warning
    page.fill("#volume", "20000")
    page.click("#refill")
    page.wait_for_selector("#refill-result.warning")
    text = page.inner_text("#refill-result")
    assert "WARNING" in text and "-2500 µL" in text and "Reservoir now 20000 µL" in text and "bench's reservoir was filled" in text
    assert ui.session.run(lambda p: p.bench_show())["reservoir_true_ul"] == 20000
    page.fill("#bolus-dose", "150")
    page.click("#bolus")
    page.wait_for_selector("#bolus-result.error")
    assert "SOFT_LIMIT" in page.inner_text("#bolus-result") and 'Tick the override "bolus_dose"' in page.inner_text("#bolus-result")
    page.check('#bolus-form input[name="override"]')
    page.fill("#bolus-dose", "50")
    page.click("#bolus")
    page.wait_for_selector("#bolus-result.okmsg")
    page.wait_for_function("() => PUMP.status && PUMP.status.status.bolus !== null")
    shot(page, "therapy")
    go(page, ui, "/")
    assert "clinician bolus is running" in page.inner_text("main")


# ---- what the guard refuses -------------------------------------------------------------------
def raw(ui: Any, method: str, path: str, headers: dict[str, str], body: str = "") -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=10)
    c.putrequest(method, path, skip_host=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(body)))
    c.endheaders(body.encode() if body else None)
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    return r.status, text


def test_requests_without_the_token_or_from_elsewhere_are_refused(ui: Any) -> None:
    running(ui)
    host = f"127.0.0.1:{ui.port}"
    tok = ui.guard.tokens["clinician"]
    cookie = f"pumpctl_ui_{ui.port}={tok}"
    good = {"Host": host, "Cookie": cookie, "X-Pumpctl-Token": tok, "Origin": f"http://{host}",
            "Content-Type": "application/json"}
    refused = {}
    refused["no token"] = raw(ui, "GET", "/api/status", {"Host": host})
    refused["no token, a page"] = raw(ui, "GET", "/", {"Host": host})
    refused["a wrong token"] = raw(ui, "GET", "/", {"Host": host, "Cookie": f"pumpctl_ui_{ui.port}=guess"})
    refused["another Host"] = raw(ui, "GET", "/api/status", dict(good, Host=f"evil.example:{ui.port}"))
    refused["POST with no token header"] = raw(ui, "POST", "/api/stop", {k: v for k, v in good.items() if k != "X-Pumpctl-Token"}, "{}")
    refused["POST from another origin"] = raw(ui, "POST", "/api/stop", dict(good, Origin="http://evil.example"), "{}")
    refused["POST from another port"] = raw(ui, "POST", "/api/stop", dict(good, Origin="http://127.0.0.1:9"), "{}")
    refused["POST with neither Origin nor Referer"] = raw(ui, "POST", "/api/stop", {k: v for k, v in good.items() if k != "Origin"}, "{}")
    refused["a token in the query of a POST"] = raw(ui, "POST", f"/api/stop?token={tok}", {"Host": host, "Origin": f"http://{host}",
                                                                                           "X-Pumpctl-Token": tok}, "{}")
    refused["PUT"] = raw(ui, "PUT", "/api/stop", good, "{}")
    codes = {k: v[0] for k, v in refused.items()}
    assert codes == {"no token": 403, "no token, a page": 403, "a wrong token": 403, "another Host": 400,
                     "POST with no token header": 403, "POST from another origin": 403, "POST from another port": 403,
                     "POST with neither Origin nor Referer": 403, "a token in the query of a POST": 403, "PUT": 405}, codes
    for what, (_code, text) in refused.items():
        assert tok not in text, what
        assert "error" in text or "open the address" in text, (what, text)
    assert ui.session.run(lambda p: p.status())["state"] == "running"  # nothing was stopped
    print("\n".join(f"refused {k}: {c} {json.loads(t)['error']['message'] if t.startswith('{') else t.strip()}"
                    for k, (c, t) in refused.items()))
    assert raw(ui, "GET", "/api/status", good)[0] == 200  # the same request with everything right


class _Evil(BaseHTTPRequestHandler):
    """Another site (another port on 127.0.0.1) whose page tries to stop the pump: a plain form
    POST (no custom header: the Origin check) and a fetch with the header (CORS preflight)."""
    target = ""

    def do_GET(self) -> None:
        page = f"""<!doctype html><html><body>
<form id="f" method="POST" action="{self.target}/api/stop" enctype="text/plain"><input name="x" value="1"></form>
<pre id="out">waiting</pre>
<script>
fetch("{self.target}/api/stop", {{method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json", "X-Pumpctl-Token": "guess"}}, body: "{{}}"}})
  .then(r => r.text()).then(t => document.getElementById("out").textContent = "fetch answered " + t)
  .catch(e => document.getElementById("out").textContent = "fetch blocked: " + e);
</script></body></html>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *a: Any) -> None:
        pass


def test_a_page_of_another_site_cannot_change_anything(browser: Any, page: Any, ui: Any) -> None:
    running(ui)
    _Evil.target = f"http://127.0.0.1:{ui.port}"
    evil = HTTPServer(("127.0.0.1", 0), _Evil)
    t = threading.Thread(target=evil.serve_forever, daemon=True)
    t.start()
    try:
        ctx = page.context  # the clinician's browser, holding the app's cookie
        pg = ctx.new_page()
        pg.goto(f"http://127.0.0.1:{evil.server_port}/")
        pg.wait_for_function("() => document.getElementById('out').textContent !== 'waiting'")
        assert pg.inner_text("#out").startswith("fetch blocked")  # the preflight is never granted
        with pg.expect_response(lambda r: r.url.endswith("/api/stop")) as posted:
            pg.evaluate("document.getElementById('f').submit()")
        assert posted.value.status == 403 and posted.value.json()["error"]["code"] == "REFUSED"
        pg.close()
    finally:
        evil.shutdown()
        evil.server_close()
    assert ui.session.run(lambda p: p.status())["state"] == "running"


@pytest.mark.safety("SR-044")
def test_no_page_or_reply_carries_key_material(page: Any, ui: Any) -> None:
    from pumpctl.keystore import Keystore
    keys = Keystore().load(ui.session.device_id).keys
    secrets = [keys["clinician"], keys["patient"]]
    seen: list[str] = []

    def keep(r: Any) -> None:
        if r.url.startswith(f"http://127.0.0.1:{ui.port}") and r.status != 303:
            seen.append(r.text())
    page.on("response", keep)
    for path in ("/", "/program", "/therapy", "/setup", "/history", "/bench", "/patient"):
        go(page, ui, path)
        page.wait_for_timeout(300)
    for path in ("/api/status", "/api/identify", "/api/program", "/api/refill", "/api/settings", "/api/history?days=2",
                 "/api/log", "/api/log?ring=refusals", "/api/usage", "/api/bench/show", "/api/alarms", "/api/patient/status"):
        r = page.request.get(f"http://127.0.0.1:{ui.port}{path}")
        assert r.status == 200, (path, r.text())
        seen.append(r.text())
    assert len(seen) > 20
    digest = ui.session.run(lambda p: p.drugs())["digest"]
    for text in seen:
        low = text.lower()
        for k in secrets:
            assert k not in low and k.upper() not in text
        assert not re.search(r"\b[0-9a-f]{64}\b", low.replace(digest, "")), \
            "a 64-hex-digit value other than the drug library's digest"
