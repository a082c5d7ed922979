"""The mapping editor in a real browser: Debian's chromium, headless, driven by
selenium through Debian's chromedriver, against the admin front controller
(php -S) and the WeChat sandbox. Run by `make test-browser` inside
scripts/with-sandbox.sh:

    target/browser-venv/bin/python tests/browser/test_editor.py TARGET_PROFILE_DIR

It loads the page, picks an event and a template, maps the keywords, compares the
preview with what the library renders, saves, reloads, makes a bad mapping,
requeues a dead letter, and writes screenshots to TARGET/browser/.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
APPID = "wxdemo0000000001"
APP_SECRET = "demo-app-secret-0001"
ADMIN_SECRET = "browser-test-admin-secret"
TPL_DELIVERED = "Ib27Mxy85v0eqHp2ERuLGQZx3NAcZCf_jCmhQdY7Ez-"
TPL_PAY_SUCCESS = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECS = 20

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "debug").resolve()


class EditorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sandbox = os.environ.get("FASHOP_NOTIFY_SANDBOX_URL")
        if not sandbox:
            raise RuntimeError("run inside scripts/with-sandbox.sh (FASHOP_NOTIFY_SANDBOX_URL is unset)")
        cls.state = Path(tempfile.mkdtemp(prefix="fashop-editor-"))
        cls.mapping_file = cls.state / "mapping.json"
        cls.env = dict(
            os.environ,
            FASHOP_NOTIFY_LIB=str(OUT / "libfashop_notify.so"),
            FASHOP_NOTIFY_ADMIN_SECRET=ADMIN_SECRET,
            FASHOP_NOTIFY_APPID=APPID,
            FASHOP_NOTIFY_APP_SECRET=APP_SECRET,
            FASHOP_NOTIFY_API_BASE=sandbox,
            FASHOP_NOTIFY_STORE=f"sqlite:{cls.state / 'notify.db'}",
            FASHOP_NOTIFY_MAPPING_FILE=str(cls.mapping_file),
        )
        cls.dead_id = json.loads(cls.php("dead-letter"))["id"]

        cls.server = subprocess.Popen(
            ["php", "-d", "ffi.enable=1", "-S", "127.0.0.1:0", str(ROOT / "bindings/php/admin/index.php")],
            env=cls.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # php -S logs one "Development Server (http://127.0.0.1:PORT) started" line once it listens.
        for line in cls.server.stderr:
            started = re.search(r"Development Server \((http://127\.0\.0\.1:\d+)\) started", line)
            if started:
                break
        else:
            raise RuntimeError("php -S did not start")
        # Keep reading its log so the pipe never fills up.
        import threading

        cls.log = []
        threading.Thread(target=lambda: cls.log.extend(cls.server.stderr), daemon=True).start()
        cls.url = started.group(1) + "/"

        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        # The console, for CSP violations (the reach charts are drawn in the page).
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        cls.profile = tempfile.mkdtemp(prefix="fashop-chromium-")
        for flag in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={cls.profile}",
            "--window-size=1280,800",
            "--lang=zh-CN",
        ]:
            opts.add_argument(flag)
        cls.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        cls.shots = OUT.parent / "browser"
        cls.shots.mkdir(parents=True, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.terminate()
        cls.server.wait(timeout=10)
        shutil.rmtree(cls.profile, ignore_errors=True)
        shutil.rmtree(cls.state, ignore_errors=True)

    @classmethod
    def php(cls, *args) -> str:
        return subprocess.run(
            ["php", "-d", "ffi.enable=1", str(ROOT / "tests/browser/fixtures.php"), *args],
            env=cls.env, check=True, capture_output=True, text=True,
        ).stdout

    # --- helpers ---------------------------------------------------------------------

    def wait(self, condition, what):
        # The page re-renders its lists: an element found a moment ago may be gone.
        return WebDriverWait(self.driver, WAIT_SECS, ignored_exceptions=(StaleElementReferenceException,)).until(condition, message=what)

    def css(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def row(self, keyword):
        return self.css(f'#keywords tr[data-keyword="{keyword}"]')

    def preview_rows(self):
        # Read in one script: the preview is re-rendered as the draft changes.
        return {k: tuple(v) for k, v in self.driver.execute_script(
            "const rows = {};"
            "for (const r of document.querySelectorAll('#preview tbody tr[data-keyword]'))"
            "  rows[r.dataset.keyword] = [r.querySelector('.value').textContent, r.dataset.verdict];"
            "return rows;").items()}

    def count(self, name):
        return self.driver.execute_script(
            "const b = document.querySelector('#outbox-counts [data-count=\"' + arguments[0] + '\"] b');"
            "return b ? b.textContent : null;", name)

    def wait_preview(self, predicate, what):
        return self.wait(lambda d: (lambda rows: rows if rows and predicate(rows) else False)(self.preview_rows()), what)

    def saved(self):
        return json.loads(self.mapping_file.read_text()) if self.mapping_file.exists() else None

    def viewport(self, width, height, mobile=False):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, name, width):
        """The whole page at this width (the editor and the outbox below it)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.viewport(width, height, width < 600)
        self.driver.save_screenshot(str(self.shots / name))

    def fits_window(self):
        return self.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    # --- the walk-through -----------------------------------------------------------------

    def test_editor(self):
        d = self.driver
        self.viewport(1280, 800)
        d.get(self.url)

        # The API refuses a request without the admin secret, and the page asks for it.
        status = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('api/events').then(async r => done([r.status, (await r.json()).error.code]));")
        self.assertEqual([401, "unauthorized"], status)
        self.wait(EC.visibility_of_element_located((By.ID, "secret")), "the login form")
        self.css("#secret").send_keys("wrong secret")
        self.css("#login-form button").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "login-error"), "密钥错误"), "a wrong secret is refused")
        self.css("#secret").clear()
        self.css("#secret").send_keys(ADMIN_SECRET)
        self.css("#login-form button").click()

        # The events with their state; pick 订单发货.
        item = self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, '#event-list li[data-event="order_delivered"]')), "the event list")
        self.assertEqual("unmapped", item.get_attribute("data-state"))
        self.assertEqual(5, len(d.find_elements(By.CSS_SELECTOR, "#event-list li[data-event]")))
        item.click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "订单发货"), "the event's editor")

        # Pick the sandbox's shipping template; its keywords appear on the left with type and limit.
        Select(self.css("#template")).select_by_value(TPL_DELIVERED)
        self.wait(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#keywords tr[data-keyword]")) == 4, "the template's keywords")
        self.assertIn("快递公司", self.row("thing2").text)
        self.assertIn("事物", self.row("thing2").text)
        # The keyword's rule in Chinese (the library's own text is English).
        self.assertIn("一行文字", self.row("thing2").find_element(By.CSS_SELECTOR, "td[title]").get_attribute("title"))

        # Map every keyword by hand: field (and its format) on the right.
        mapping = {
            "character_string1": ("order_sn", "", "{order_sn}"),
            "thing2": ("express_company", "", "{express_company}"),
            "character_string3": ("tracking_no", "", "{tracking_no}"),
            "time4": ("delivery_time", "datetime", "{delivery_time|datetime}"),
        }
        for keyword, (field, fmt, placeholder) in mapping.items():
            row = self.row(keyword)
            Select(row.find_element(By.CSS_SELECTOR, "select.field")).select_by_value(field)
            Select(row.find_element(By.CSS_SELECTOR, "select.filter")).select_by_value(fmt)
            self.assertEqual(placeholder, row.find_element(By.CSS_SELECTOR, "input.text").get_attribute("value"))

        # The live preview shows what the library renders for the catalog's examples.
        draft = {"template_id": TPL_DELIVERED, "page": "/pages/order/detail?id={order_id}",
                 "data": {k: v[2] for k, v in mapping.items()}}
        body = json.loads(self.php("render", "order_delivered", json.dumps(draft)))
        expected = {k: (v["value"], "ok") for k, v in body["data"].items()}
        rows = self.wait_preview(lambda r: r == expected, f"the preview to show {expected}")
        self.assertEqual("2026-11-23 10:00", rows["time4"][0])
        self.assertEqual([], d.find_elements(By.CSS_SELECTOR, "#problems li"))
        self.assertIn(body["page"], self.css("#preview-page").text)

        # Save: the mapping file holds it, the event is enabled.
        self.css("#save").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "已保存"), "the save")
        self.assertEqual(draft["data"], self.saved()["events"]["order_delivered"]["data"])
        self.wait(lambda _: self.css('#event-list li[data-event="order_delivered"]').get_attribute("data-state") == "enabled", "the enabled state")

        # The outbox shows the dead letter the fixture made.
        self.wait(lambda _: self.count("dead") == "1", "one dead letter")
        dead = self.css(f'#outbox-dead tr[data-id="{self.dead_id}"]')
        self.assertIn("40003", dead.text)
        # Its reason in the owner's words, WeChat's own text one click away.
        self.assertIn("买家的 openid 无效", dead.text)
        dead.find_element(By.CSS_SELECTOR, "td.reason summary").click()
        self.assertIn("invalid openid", dead.find_element(By.CSS_SELECTOR, "td.reason code").text)
        # And the send API's daily quota, from openapi/quota/get.
        self.wait(EC.text_to_be_present_in_element((By.ID, "outbox-quota"), "上限 100000"), "the send quota")
        quota = self.css("#outbox-quota")
        self.assertIn("今日发送额度", quota.text)
        self.assertGreater(int(quota.get_attribute("data-remain")), 0)

        # Reload: the page keeps the secret (this tab) and the event; the mapping is kept.
        d.refresh()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "订单发货"), "the event after reload")
        self.wait(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#keywords tr[data-keyword]")) == 4, "the keywords after reload")
        self.assertEqual(TPL_DELIVERED, Select(self.css("#template")).first_selected_option.get_attribute("value"))
        for keyword, (field, fmt, placeholder) in mapping.items():
            row = self.row(keyword)
            self.assertEqual(placeholder, row.find_element(By.CSS_SELECTOR, "input.text").get_attribute("value"))
            self.assertEqual(field, Select(row.find_element(By.CSS_SELECTOR, "select.field")).first_selected_option.get_attribute("value"))
        self.wait_preview(lambda r: r == expected, "the preview after reload")
        self.wait(lambda _: self.count("dead") == "1", "the outbox after reload")
        self.assertTrue(self.fits_window(), "no sideways scrolling at 1280x800")
        self.screenshot("admin-editor.png", 1280)
        self.viewport(1280, 800)

        # A template keyword left unmapped: the template check refuses the save.
        problem_paths = lambda: d.execute_script(
            "return [...document.querySelectorAll('#problems li')].map(li => li.dataset.path);")
        Select(self.row("time4").find_element(By.CSS_SELECTOR, "select.field")).select_by_value("")
        self.wait(lambda _: "events.order_delivered.data.time4" in problem_paths(), "the unmapped keyword's problem")
        self.css("#save").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "保存失败"), "the refused save")
        self.assertIn("events.order_delivered.data.time4", problem_paths())
        self.assertEqual(draft["data"], self.saved()["events"]["order_delivered"]["data"], "a refused save changes nothing")
        Select(self.row("time4").find_element(By.CSS_SELECTOR, "select.field")).select_by_value("delivery_time")
        self.wait_preview(lambda r: r == expected, "the preview with time4 mapped again")
        self.wait(lambda _: problem_paths() == [], "no problem left")

        # A bad mapping: an unknown field, and an order number through the money format.
        text = self.row("thing2").find_element(By.CSS_SELECTOR, "input.text")
        text.clear()
        text.send_keys("{no_such_field}")
        Select(self.row("character_string1").find_element(By.CSS_SELECTOR, "select.filter")).select_by_value("money")
        self.wait(lambda _: any(li.get_attribute("data-path") == "events.order_delivered.data.thing2"
                                for li in d.find_elements(By.CSS_SELECTOR, "#problems li")), "the unknown field's problem")
        rows = self.wait_preview(lambda r: r.get("thing2", ("", ""))[1] == "error" and r.get("character_string1", ("", ""))[1] == "error",
                                 "the verdicts of the bad keywords")
        self.assertEqual("ok", rows["time4"][1])
        d.execute_script("document.getElementById('status').textContent = ''")
        self.css("#save").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "保存失败"), "the refused save")
        self.assertIn("映射有误", self.css("#status").text)
        paths = [li.get_attribute("data-path") for li in d.find_elements(By.CSS_SELECTOR, "#problems li")]
        self.assertIn("events.order_delivered.data.thing2", paths)
        # In Chinese on the page, the English kept as the tooltip.
        texts = {li.get_attribute("data-path"): li.text for li in d.find_elements(By.CSS_SELECTOR, "#problems li")}
        self.assertIn("未知的订单字段 {no_such_field}", texts["events.order_delivered.data.thing2"])
        self.assertIn("金额格式", self.css('#preview tbody tr[data-keyword="character_string1"] .msg').text)
        self.assertEqual(draft["data"], self.saved()["events"]["order_delivered"]["data"], "a refused save changes nothing")

        # Create a template from WeChat's library for 订单取消: the suggested title, three
        # keywords in the order clicked; its keywords come mapped by the suggestion.
        self.css('#event-list li[data-event="order_cancel"]').click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "订单取消"), "the cancel editor")
        self.css("#open-library").click()
        self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, '#lib-suggested button[data-tid="2103"]')), "the suggested title").click()
        # No keyword chosen yet: addtemplate's refusal, in Chinese.
        self.css("#lib-create").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "创建失败"), "the refused template")
        self.assertIn("请按显示顺序选择关键词", self.css("#status").text)
        for kid in ["1", "4", "3"]:
            self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, f'#lib-kids label[data-kid="{kid}"]')), f"keyword {kid}").click()
        self.assertEqual(["1", "2", "3"], [self.css(f'#lib-kids label[data-kid="{k}"] .order').text for k in ["1", "4", "3"]])
        self.css("#lib-create").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "模板已创建"), "the new template")
        self.wait(lambda _: [r.get_attribute("data-keyword") for r in d.find_elements(By.CSS_SELECTOR, "#keywords tr[data-keyword]")]
                  == ["character_string1", "time4", "thing3"], "the new template's keywords in the chosen order")
        self.assertEqual("{order_cancel_time|datetime}", self.row("time4").find_element(By.CSS_SELECTOR, "input.text").get_attribute("value"))
        self.wait_preview(lambda r: [v[1] for v in r.values()] == ["ok", "ok", "ok"], "the new template's preview")
        self.css("#save").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "已保存"), "the cancel mapping saved")
        self.assertNotEqual(self.saved()["events"]["order_cancel"]["template_id"], "zFZQHNIcOQTBP6tUWfm0kOqpQyP1OlFdyKhlIB3opX3")

        # Requeue the dead letter: it is due again.
        self.css(f'#outbox-dead tr[data-id="{self.dead_id}"] button.requeue').click()
        self.wait(lambda _: self.count("dead") == "0", "no dead letter left")
        self.assertEqual("1", self.count("pending"))
        self.assertIn("已重新排队 1 条", self.css("#outbox-status").text)

        # A narrow window (a phone): one column, nothing wider than the window.
        self.viewport(390, 844, True)
        self.css('#event-list li[data-event="order_delivered"]').click()
        d.refresh()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "订单发货"), "the narrow editor")
        self.wait_preview(lambda r: r == expected, "the preview in a narrow window")
        self.assertTrue(self.fits_window(), "no sideways scrolling in a narrow window")
        self.screenshot("admin-editor-narrow.png", 390)

    # --- 送达: the reach panel against a scripted week of orders ---------------------------------

    def chart(self):
        """The 送达 charts as drawn: {event: {day: [sent, not reached]}}."""
        return self.driver.execute_script(
            "const out = {};"
            "for (const e of document.querySelectorAll('#reach-events .reach-event')) {"
            "  const days = out[e.dataset.event] = {};"
            "  for (const g of e.querySelectorAll('svg g.day'))"
            "    days[g.dataset.day] = [Number(g.dataset.sent), Number(g.dataset.notReached)];"
            "}"
            "return out;")

    def admin_api(self, path):
        req = urllib.request.Request(self.url + "api/" + path, headers={"X-Admin-Secret": ADMIN_SECRET})
        with urllib.request.urlopen(req, timeout=WAIT_SECS) as r:
            return json.loads(r.read())

    def test_reach_panel(self):
        d = self.driver
        week = json.loads(subprocess.run(
            [str(OUT / "fashop-notify-reach-week"), str(ROOT / "examples/mappings.json")],
            env=self.env, check=True, capture_output=True, text=True).stdout)
        # The outbox fixture's dead letter (40003) was counted too, today.
        today = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).strftime("%Y-%m-%d")
        pay = week["order_pay_success"].setdefault(today, {"sent": 0, "not_reached": 0})
        pay["not_reached"] += 1
        expected = {e: {day: [c["sent"], c["not_reached"]] for day, c in days.items()} for e, days in week.items()}

        # The PHP handler (GET api/reach) says what the sends returned.
        api = self.admin_api("reach")
        self.assertTrue(api["ok"], api)
        from_api = {e["event"]: {x["day"]: [x["sent"], x["not_reached"]] for x in e["days"] if x["sent"] or x["not_reached"]}
                    for e in api["data"]["events"]}
        self.assertEqual(expected, from_api)

        # The page draws the same numbers, day by day.
        self.viewport(1280, 800)
        d.get(self.url)
        if d.find_elements(By.CSS_SELECTOR, "#secret") and self.css("#secret").is_displayed():
            self.css("#secret").send_keys(ADMIN_SECRET)
            self.css("#login-form button").click()
        self.wait(lambda _: len(self.chart()) == 2, "the reach charts")
        drawn = {e: {day: v for day, v in days.items() if v != [0, 0]} for e, days in self.chart().items()}
        self.assertEqual(expected, drawn)
        self.assertEqual(7, len(self.chart()["order_pay_success"]), "one group of bars per day of the week")

        # The reach rate, and why the rest was not reached, in the owner's words.
        total = api["data"]["events"][0]["total"]
        box = self.css('#reach-events .reach-event[data-event="order_pay_success"]')
        self.assertIn("送达率 %d%%" % round(100 * total["reach_rate"]), box.text)
        self.assertIn("买家未授权此模板", box.text)
        self.assertIn("买家已拒收", box.text)
        tooltip = self.driver.execute_script(
            "return [...arguments[0].querySelectorAll('rect.missed title')].map(t => t.textContent).join('\\n')", box)
        self.assertIn("买家未授权此模板", tooltip)

        # The grant stock: the buyer who allowed both templates, and the low-stock hint.
        rows = d.find_elements(By.CSS_SELECTOR, "#reach-stock tbody tr[data-template]")
        self.assertEqual(2, len(rows))
        holders = {r.get_attribute("data-template"): r.find_element(By.CSS_SELECTOR, "td[data-holders]").text for r in rows}
        # The week's buyer holds both; the outbox fixture's buyer got the grant back when WeChat answered 40003.
        self.assertEqual({TPL_PAY_SUCCESS: "2", TPL_DELIVERED: "1"}, holders)
        # 订单发货 is mapped (the walk-through saved it): 7 sends this week, 1 buyer holds a grant.
        shipping = self.css(f'#reach-stock tr[data-template="{TPL_DELIVERED}"]')
        self.assertIn("low", shipping.get_attribute("class"), shipping.text)
        self.assertIn("仅 1 位买家允许", shipping.text)
        self.assertEqual([], [e for e in d.get_log("browser") if "Content Security Policy" in e.get("message", "")])

        self.viewport(1280, 800)
        height = d.execute_script("return document.documentElement.scrollHeight")
        self.viewport(1280, height)
        self.css("#reach").screenshot(str(self.shots / "admin-reach.png"))

    def test_service_card_choice(self):
        """服务卡片: the refund moves the order's card 2001 to status 6, no template needed."""
        d = self.driver
        self.viewport(1280, 800)
        d.get(self.url)
        if self.css("#secret").is_displayed():
            self.css("#secret").send_keys(ADMIN_SECRET)
            self.css("#login-form button").click()
        item = self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, '#event-list li[data-event="order_refund_apply"]')), "the event list")
        item.click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "退款申请"), "the refund's editor")
        Select(self.css("#channel")).select_by_value("card")
        self.assertFalse(self.css("#card-box").get_attribute("hidden"))
        self.assertFalse(self.css("#template-row").is_displayed(), "no template for a card")
        Select(self.css("#card-type")).select_by_value("2001")
        Select(self.css("#card-status")).select_by_value("6")
        # The status's one field comes filled with the order page.
        field = self.css('#card-fields tr[data-card-field="wxa_path_query"] input')
        self.assertEqual("pages/order/detail?id={order_id}", field.get_attribute("value"))
        self.wait(EC.text_to_be_present_in_element((By.ID, "card-preview-status"), "已取消/已退款"), "the card's preview")
        fields = json.loads(self.css("#card-preview-fields").text)
        self.assertEqual({"cur_status": 6, "wxa_path_query": "pages/order/detail?id=10086"}, fields)
        self.css("#save").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), "已保存"), "saved")
        saved = self.saved()["events"]["order_refund_apply"]
        self.assertEqual("card", saved["channel"])
        self.assertEqual({"notify_type": 2001, "status": 6, "fields": {"wxa_path_query": "pages/order/detail?id={order_id}"}}, saved["card"])
        # After a reload the choice is still there.
        d.refresh()
        self.wait(EC.text_to_be_present_in_element((By.ID, "event-label"), "退款申请"), "the editor after a reload")
        self.wait(lambda _: Select(self.css("#card-status")).first_selected_option.get_attribute("value") == "6", "the saved status")
        self.assertEqual("card", Select(self.css("#channel")).first_selected_option.get_attribute("value"))
        self.screenshot("admin-editor-card.png", 1280)


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
