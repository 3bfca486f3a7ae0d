#!/usr/bin/env python3
"""Drive the buyer's app and the operator's console in a real browser
(Debian's chromium through chromium-driver, by Selenium), against a tacos host
on a virtual clock that this script advances:

  1. a buyer on a 375 px wide screen, by keyboard: signs in, joins the waiting
     room and watches their place move, chooses two seats, holds them, pays
     with the approving test card, and sees the order id;
  2. a payment that fails, shown with the seats released;
  3. a hold that expires, shown;
  4. the console swapping payment-sim to its chaos build and back, the
     version changing on screen each time.

Every step waits (bounded) for what a person would see. The browser's console
must stay free of errors. Screenshots go to the directory given.

    browser-check URL EVENT SCREENSHOT_DIR
"""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20  # seconds for anything a person would wait for
DRIVER = os.environ.get("TACOS_CHROMEDRIVER", "/usr/bin/chromedriver")
BROWSER = os.environ.get("TACOS_CHROMIUM", "/usr/bin/chromium")


def advance(url, seconds):
    """Move the host's virtual clock; returns once what became due has run."""
    req = urllib.request.Request(
        f"{url}/admin/v1/clock/advance",
        data=json.dumps({"seconds": seconds}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        body = json.load(r)
    assert body.get("settled"), body


def browser(width, height):
    opts = Options()
    opts.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    if width < 500:
        # A headless window is at least 500 px wide: a phone is emulated.
        opts.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


class Check:
    def __init__(self, url, event, shots):
        self.url, self.event, self.shots = url, event, shots
        self.errors = []

    def wait(self, d, what, condition):
        try:
            return WebDriverWait(d, WAIT).until(condition)
        except TimeoutException:
            self.shot(d, f"failed-{what}")
            raise AssertionError(f"timed out waiting for {what}; page: {d.find_element(By.TAG_NAME, 'body').text!r}")

    def text_in(self, d, what, css, text):
        return self.wait(d, what, ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def shot(self, d, name):
        path = os.path.join(self.shots, f"{name}.png")
        d.save_screenshot(path)
        print(f"screenshot {path}", flush=True)

    def console_errors(self, d, where):
        for entry in d.get_log("browser"):
            if entry["level"] == "SEVERE":
                self.errors.append(f"{where}: {entry['message']}")

    def sign_in(self, d, user):
        d.get(self.url + "/")
        field = self.wait(d, "the sign-in form", ec.element_to_be_clickable((By.ID, "user")))
        field.send_keys(user, Keys.ENTER)  # the keyboard: type, then Enter
        self.wait(d, "the events", ec.presence_of_element_located((By.CSS_SELECTOR, f"[data-event='{self.event}']")))

    def join(self, d):
        join = self.wait(d, "the event", ec.element_to_be_clickable((By.CSS_SELECTOR, f"[data-event='{self.event}']")))
        join.send_keys(Keys.ENTER)

    def to_seats(self, d):
        self.join(d)
        self.wait(d, "the seat map", ec.presence_of_element_located((By.CSS_SELECTOR, ".seat.available[data-seat]")))

    def hold(self, d, seats):
        for seat in seats:
            button = self.wait(d, f"seat {seat}", ec.element_to_be_clickable((By.CSS_SELECTOR, f"[data-seat='{seat}']")))
            button.send_keys(Keys.SPACE)
        self.text_in(d, "the choice", "#chosen", ", ".join(seats))
        d.find_element(By.ID, "hold").send_keys(Keys.ENTER)
        self.wait(d, "the countdown", lambda d: ":" in d.find_element(By.ID, "countdown").text)

    def pay(self, d, scenario):
        card = self.wait(d, f"the {scenario} card",
                         ec.element_to_be_clickable((By.CSS_SELECTOR, f"[data-scenario='{scenario}']")))
        card.send_keys(Keys.ENTER)
        self.text_in(d, "the payment in progress", "h1", "Processing")

    def buyer_confirmed(self):
        d = browser(375, 812)
        try:
            self.sign_in(d, "alice")
            self.join(d)
            # Two joined before alice at one admission a second: she watches her place move.
            self.text_in(d, "a place in line", "#queue-status", "Waiting")
            first = int(d.find_element(By.ID, "position").text)
            assert first >= 1, first
            self.shot(d, "waiting-room")
            advance(self.url, 1)
            self.wait(d, "the place moving", lambda d: d.find_element(By.ID, "position").text not in ("", str(first)))
            advance(self.url, 2)
            self.wait(d, "the seat map", ec.presence_of_element_located((By.CSS_SELECTOR, ".seat.available[data-seat]")))
            width = d.execute_script("return document.documentElement.scrollWidth")
            assert width <= 375, f"the page is {width} px wide on a 375 px screen"
            self.hold(d, ["A-1", "A-2"])
            self.shot(d, "hold")
            self.pay(d, "PAYMENT_SCENARIO_APPROVE")
            advance(self.url, 5)
            order = self.wait(d, "the order", ec.presence_of_element_located((By.ID, "order-id")))
            assert order.text.startswith("ord_"), order.text
            self.shot(d, "confirmed")
            self.console_errors(d, "buyer")
        finally:
            d.quit()

    def buyer_failed_and_expired(self):
        d = browser(375, 812)
        try:
            self.sign_in(d, "bob")
            self.to_seats(d)
            self.hold(d, ["A-5"])
            self.pay(d, "PAYMENT_SCENARIO_FAIL")
            advance(self.url, 3)
            self.text_in(d, "the failure", "h1", "The payment failed")
            self.text_in(d, "the seats released", "#outcome", "A-5 were released")
            self.shot(d, "payment-failed")
            d.find_element(By.CSS_SELECTOR, "button.primary").send_keys(Keys.ENTER)
            self.to_seats(d)
            self.hold(d, ["A-6"])
            advance(self.url, 61)
            self.text_in(d, "the expiry", "h1", "Your hold expired")
            self.shot(d, "hold-expired")
            self.console_errors(d, "buyer")
        finally:
            d.quit()

    def console_swap(self):
        d = browser(1280, 900)
        try:
            d.get(self.url + "/console")
            row = "tr[data-service='payment-sim']"
            self.wait(d, "the services", ec.presence_of_element_located((By.CSS_SELECTOR, row)))
            self.wait(d, "the charts", lambda d: "max" in d.find_element(By.CSS_SELECTOR, ".chart .now").text)
            # Read in one step: the table is redrawn as the host changes.
            version = lambda: d.execute_script(
                "const c = document.querySelector(arguments[0]); return c && c.textContent;",
                f"{row} td.version code")
            before = version()
            click = lambda action: self.wait(
                d, action, ec.element_to_be_clickable((By.CSS_SELECTOR, f"{row} [data-action='{action}']"))).click()
            click("build-chaos")
            self.wait(d, "the chaos version", lambda d: version() != before)
            chaos = version()
            self.shot(d, "console")
            click("build-standard")
            self.wait(d, "the standard version again", lambda d: version() == before)
            assert chaos != before
            self.console_errors(d, "console")
        finally:
            d.quit()


def main():
    url, event, shots = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(shots, exist_ok=True)
    check = Check(url, event, shots)
    for step in (check.buyer_confirmed, check.buyer_failed_and_expired, check.console_swap):
        started = time.time()
        step()
        print(f"ok {step.__name__} ({time.time() - started:.1f} s)", flush=True)
    if check.errors:
        raise AssertionError("errors in the browser's console:\n" + "\n".join(check.errors))
    print("ok: no errors in the browser's console", flush=True)


if __name__ == "__main__":
    main()
