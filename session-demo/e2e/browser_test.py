#!/usr/bin/env python3
"""End-to-end test of the session demo in a real headless Chromium, through chromedriver.

Python standard library only: WebDriver is JSON over HTTP, so a small client is all it takes,
and nothing has to be downloaded. Run by `.ci/e2e`, which installs Chromium and builds the demo:

    python3 session-demo/e2e/browser_test.py --demo target/debug/session-demo

It starts the demo on a free port with a fresh SQLite file, drives the browser through the visit
counter, log in (with a hostile username), remember me, a restart of the demo process, the
session page and log out, checking the cookies the browser holds at each step; then it stops
everything it started. Exit status 0 when every check passed, 1 otherwise.
"""

import argparse
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
THIRTY_DAYS = 30 * 86400
TWO_WEEKS = 14 * 86400
HOSTILE_NAME = "<b>alice</b> & <script>alert('x')</script>"


class Failure(Exception):
    """A check that did not hold."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def wait_until(what, predicate, timeout=10.0, interval=0.05):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (Failure, WebDriverError, OSError) as error:
            last_error = error
        time.sleep(interval)
    raise Failure(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the demo process ---------------------------------------------------------------------------


class Demo:
    """The demo binary on a SQLite file; restartable on the same port."""

    def __init__(self, binary, workdir, secret):
        self.binary = binary
        self.workdir = workdir
        self.database = os.path.join(workdir, "e2e.sqlite3")
        self.env = dict(os.environ, SECRET_KEY=secret)
        self.env.pop("DATABASE_URL", None)
        self.process = None
        self.port = 0
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, f"demo-{self.starts}.log"), "wb")
        self.process = subprocess.Popen(
            [self.binary, "--store", "sqlite", "--listen", f"127.0.0.1:{self.port}",
             "--database-url", f"sqlite://{self.database}?mode=rwc"],
            cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=log,
        )
        log.close()
        line = self._first_line(timeout=20)
        # "session-demo: serving http://127.0.0.1:PORT/ with sessions in ..."
        check("serving http://127.0.0.1:" in line, f"unexpected first line from the demo: {line!r}")
        self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        wait_until("the demo's /healthz", lambda: http_get(f"{self.url}/healthz") == "ok")

    def _first_line(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise Failure(f"the demo printed nothing in {timeout}s; see {self.workdir}/demo-{self.starts}.log")
        line = self.process.stdout.readline().decode("utf-8", "replace")
        if not line:
            raise Failure(f"the demo exited with {self.process.wait()}; see {self.workdir}/demo-{self.starts}.log")
        return line

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def http_get(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read().decode()


# --- a minimal WebDriver client ----------------------------------------------------------------


class WebDriverError(Exception):
    pass


ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    """chromedriver + one headless Chromium session."""

    def __init__(self, profile_dir, log_path):
        self.port = free_port()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}", f"--log-path={log_path}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        wait_until("chromedriver", lambda: self._request("GET", "/status")["ready"])
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": CHROMIUM_FLAGS + [f"--user-data-dir={profile_dir}"],
            },
        }}}
        self.session = self._request("POST", "/session", capabilities)["sessionId"]

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            detail = json.load(error).get("value", {})
            raise WebDriverError(f"{method} {path}: {detail.get('error')}: {detail.get('message', '')[:300]}") from None

    def _cmd(self, method, path, body=None):
        return self._request(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self._cmd("POST", "/url", {"url": url})

    def refresh(self):
        self._cmd("POST", "/refresh", {})

    def find_all(self, css):
        return [e[ELEMENT] for e in self._cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def find(self, css):
        found = self.find_all(css)
        check(len(found) == 1, f"expected one element {css!r}, found {len(found)}")
        return found[0]

    def text(self, css):
        return self._cmd("GET", f"/element/{self.find(css)}/text")

    def click(self, css):
        self._cmd("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self._cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def cookies(self):
        return {c["name"]: c for c in self._cmd("GET", "/cookie")}

    def delete_cookies(self):
        self._cmd("DELETE", "/cookie")

    def add_cookie(self, cookie):
        self._cmd("POST", "/cookie", {"cookie": cookie})

    def close(self):
        try:
            if self.session:
                self._request("DELETE", f"/session/{self.session}")
        except (WebDriverError, OSError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()


# --- the scenario ------------------------------------------------------------------------------


def session_cookie(browser):
    cookie = browser.cookies().get("sessionid")
    check(cookie is not None, f"the browser holds no sessionid cookie (it has {sorted(browser.cookies())})")
    return cookie


def visits(browser):
    return int(browser.text("#visits"))


def expires_in(cookie):
    """Seconds until the cookie expires, or None for a session (browser-close) cookie."""
    return None if "expiry" not in cookie else cookie["expiry"] - time.time()


def scenario(browser, demo, step):
    with step("first visit: the server sets an HttpOnly, SameSite=Lax cookie and counts 1"):
        browser.go(demo.url + "/")
        check(visits(browser) == 1, f"visits = {visits(browser)}")
        cookie = session_cookie(browser)
        check(cookie["httpOnly"] is True, f"cookie not HttpOnly: {cookie}")
        check(cookie.get("sameSite") == "Lax", f"cookie SameSite is {cookie.get('sameSite')}")
        check(abs(expires_in(cookie) - TWO_WEEKS) < 120, f"cookie lifetime {expires_in(cookie)}s, expected two weeks")
        first_key = cookie["value"]

    with step("reload: the browser sends the cookie back and the counter goes up"):
        browser.refresh()
        wait_until("visits = 2", lambda: visits(browser) == 2)
        browser.refresh()
        wait_until("visits = 3", lambda: visits(browser) == 3)
        check(session_cookie(browser)["value"] == first_key, "the key changed without a login")

    with step("log in with a hostile username and remember me: key cycled, counter kept, 30-day cookie"):
        browser.type("#username-input", HOSTILE_NAME)
        browser.click("#remember-input")
        browser.click("#login")
        wait_until("the logged-in page", lambda: browser.find_all("#username"))
        check(browser.text("#username") == HOSTILE_NAME, f"username shown as {browser.text('#username')!r}")
        check(not browser.find_all("#username b") and not browser.find_all("script"),
              "the username was interpreted as HTML")
        check(visits(browser) == 4, f"visits after login = {visits(browser)}, expected 4")
        cookie = session_cookie(browser)
        check(cookie["value"] != first_key, "logging in did not cycle the session key")
        check(abs(expires_in(cookie) - THIRTY_DAYS) < 120, f"remembered cookie lifetime {expires_in(cookie)}s")
        logged_in_key = cookie["value"]

    with step("forget me: the cookie becomes a browser-session cookie"):
        browser.click("#remember-toggle")
        wait_until("the browser-close notice", lambda: "until the browser closes" in browser.text("#lifetime"))
        cookie = session_cookie(browser)
        check(expires_in(cookie) is None, f"cookie still expires in {expires_in(cookie)}s")
        check(cookie["value"] == logged_in_key, "toggling remember-me changed the key")
        count = visits(browser)

    with step("restart the demo process: the SQLite session survives"):
        demo.stop()
        demo.start()
        browser.refresh()
        wait_until(f"visits = {count + 1}", lambda: visits(browser) == count + 1)
        check(browser.text("#username") == HOSTILE_NAME, "logged out by the restart")
        check(session_cookie(browser)["value"] == logged_in_key, "the key changed across the restart")

    with step("the session page lists the contents and expiry"):
        browser.go(demo.url + "/session")
        contents = browser.text("#contents")
        for expected in ["visits", "username", "_session_expiry", "_csrftoken", json.dumps(HOSTILE_NAME)]:
            check(expected in contents, f"{expected!r} missing from the session page: {contents!r}")
        check(browser.text("#browser-close") == "yes", "expected a browser-close session")
        check(browser.text("#key") == logged_in_key[:4] + "…", f"key shown as {browser.text('#key')!r}")

    with step("log out: session flushed, a fresh session starts, the old key is dead"):
        browser.go(demo.url + "/")
        browser.click("#logout")
        wait_until("the logged-out page", lambda: browser.text("#user") == "Not logged in.")
        check(visits(browser) == 1, f"visits after logout = {visits(browser)}")
        check(session_cookie(browser)["value"] != logged_in_key, "the old key survived logout")
        browser.delete_cookies()
        browser.add_cookie({"name": "sessionid", "value": logged_in_key, "path": "/", "httpOnly": True})
        browser.go(demo.url + "/session")
        check("No session yet" in browser.text("#key"), "the logged-out key still names a session")


class Steps:
    def __init__(self):
        self.passed = 0
        self.failure_reported = False

    def __call__(self, name):
        return _Step(self, name)


class _Step:
    def __init__(self, steps, name):
        self.steps, self.name, self.start = steps, name, 0.0

    def __enter__(self):
        self.start = time.monotonic()

    def __exit__(self, kind, error, _tb):
        elapsed = time.monotonic() - self.start
        if kind is None:
            self.steps.passed += 1
            print(f"ok    {self.name} ({elapsed:.2f}s)", flush=True)
        else:
            self.steps.failure_reported = True
            print(f"FAIL  {self.name}: {error}", flush=True)
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="the session-demo binary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    for tool in ("chromedriver", "/usr/bin/chromium"):
        if not shutil.which(tool):
            print(f"browser_test: {tool} not found: apt-get install -y chromium chromium-driver", file=sys.stderr)
            return 2

    began = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="session-demo-e2e-")
    demo = Demo(os.path.abspath(args.demo), workdir, secrets.token_urlsafe(32))
    browser = None
    steps = Steps()
    ok = False
    try:
        demo.start()
        browser = Browser(os.path.join(workdir, "chromium-profile"), os.path.join(workdir, "chromedriver.log"))
        scenario(browser, demo, steps)
        ok = True
    except (Failure, WebDriverError, OSError) as error:
        if not steps.failure_reported:
            print(f"FAIL  {error}", flush=True)
    finally:
        if browser:
            browser.close()
        demo.stop()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs and database kept in {workdir}")
    print(f"{'passed' if ok else 'FAILED'}: {steps.passed} steps in {time.monotonic() - began:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
