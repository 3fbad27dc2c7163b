"""Mixed load against a running provider, for `scripts/soak`: client credentials, full browser
logins (authorize, login form, consent, code exchange), refresh, introspection and paced
registrations, from several threads, for a fixed duration. Every interval it prints the
requests, unexpected errors and the provider's RSS; at the end a summary, and the exit
status says whether the run was clean (no unexpected error, RSS flat after warm-up).

Deliberate bad input (a wrong client secret) is counted apart: those requests must fail (401,
then 429 once the client's budget of failures is spent).
"""

import argparse
import base64
import hashlib
import random
import re
import secrets
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

import requests

WEBAPP_REDIRECT = "http://127.0.0.1:9000/callback"
# Registrations per client address are limited to 20 per 10 minutes: stay under it.
REGISTRATION_INTERVAL = 35.0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.deliberate = 0
        self.by_kind = {}
        self.first_errors = []

    def count(self, kind, ok, detail=""):
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if not ok:
                self.errors += 1
                if len(self.first_errors) < 10:
                    self.first_errors.append(f"{kind}: {detail}")


def expect(stats, kind, response, status):
    ok = response.status_code == status
    stats.count(kind, ok, f"{response.status_code} {response.text[:200]}")
    return ok


def hidden(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    return match.group(1) if match else ""


class Load:
    def __init__(self, base, stats):
        self.base = base
        self.stats = stats
        self.refresh_tokens = []
        self.refresh_lock = threading.Lock()
        self.next_registration = time.monotonic()
        self.registration_lock = threading.Lock()

    def url(self, path):
        return self.base + path

    def client_credentials(self, http):
        response = http.post(self.url("/token"), data={"grant_type": "client_credentials", "scope": "reports:read"},
                             auth=("m2m", "m2m-secret"))
        if not expect(self.stats, "client_credentials", response, 200):
            return
        token = response.json()["access_token"]
        response = http.post(self.url("/introspect"), data={"token": token}, auth=("m2m", "m2m-secret"))
        if expect(self.stats, "introspection", response, 200) and not response.json().get("active"):
            self.stats.count("introspection", False, "token inactive")

    def browser_login(self, _http):
        browser = requests.Session()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "client_id": "webapp", "redirect_uri": WEBAPP_REDIRECT, "response_type": "code",
            "scope": "openid profile offline_access", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256",
        }
        page = browser.get(self.url("/authorize"), params=params, allow_redirects=False)
        if not expect(self.stats, "authorize", page, 200):
            return
        form = {"interaction": hidden(page.text, "interaction"), "csrf_token": hidden(page.text, "csrf_token"),
                "username": "alice", "password": "alice-password"}
        response = browser.post(self.url("/login"), data=form, allow_redirects=False)
        if response.status_code == 200 and 'name="decision"' in response.text:
            self.stats.count("login", True)
            consent = {"interaction": hidden(response.text, "interaction"),
                       "csrf_token": hidden(response.text, "csrf_token"), "decision": "allow"}
            response = browser.post(self.url("/consent"), data=consent, allow_redirects=False)
            kind = "consent"
        else:
            kind = "login"
        if not expect(self.stats, kind, response, 303):
            return
        code = parse_qs(urlparse(response.headers["location"]).query).get("code", [""])[0]
        response = browser.post(self.url("/token"), auth=("webapp", "webapp-secret"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": WEBAPP_REDIRECT,
            "code_verifier": verifier})
        if expect(self.stats, "code_exchange", response, 200):
            with self.refresh_lock:
                self.refresh_tokens.append(response.json()["refresh_token"])
                del self.refresh_tokens[:-200]

    def refresh(self, http):
        with self.refresh_lock:
            token = self.refresh_tokens.pop() if self.refresh_tokens else None
        if token is None:
            return self.client_credentials(http)
        response = http.post(self.url("/token"), auth=("webapp", "webapp-secret"),
                             data={"grant_type": "refresh_token", "refresh_token": token})
        if expect(self.stats, "refresh", response, 200):
            with self.refresh_lock:
                self.refresh_tokens.append(response.json()["refresh_token"])

    def registration(self, http):
        with self.registration_lock:
            if time.monotonic() < self.next_registration:
                return self.client_credentials(http)
            self.next_registration = time.monotonic() + REGISTRATION_INTERVAL
        response = http.post(self.url("/register"), json={
            "grant_types": ["client_credentials"], "scope": "profile", "client_name": "soak"})
        if not expect(self.stats, "registration", response, 201):
            return
        registered = response.json()
        response = http.post(self.url("/token"), data={"grant_type": "client_credentials"},
                             auth=(registered["client_id"], registered["client_secret"]))
        expect(self.stats, "registered_client_token", response, 200)
        response = http.delete(registered["registration_client_uri"],
                               headers={"authorization": f"Bearer {registered['registration_access_token']}"})
        expect(self.stats, "registration_delete", response, 204)

    def bad_secret(self, http):
        response = http.post(self.url("/token"), data={"grant_type": "client_credentials"},
                             auth=("m2m", "not-the-secret"))
        with self.stats.lock:
            self.stats.deliberate += 1
        # 401 until the client's budget of failures is spent, 429 for the rest of the minute.
        self.stats.count("deliberate_bad_secret", response.status_code in (401, 429), f"{response.status_code}")

    def worker(self, deadline):
        http = requests.Session()
        scenarios = [(self.client_credentials, 40), (self.browser_login, 15), (self.refresh, 25),
                     (self.registration, 5), (self.bad_secret, 2)]
        functions, weights = zip(*scenarios)
        while time.monotonic() < deadline:
            scenario = random.choices(functions, weights)[0]
            try:
                scenario(http)
            except requests.RequestException as error:
                self.stats.count(scenario.__name__, False, repr(error))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the provider's process id, for its RSS")
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--max-rss-growth", type=float, default=0.10,
                        help="largest accepted RSS growth after warm-up (fraction)")
    args = parser.parse_args()

    stats = Stats()
    load = Load(args.base.rstrip("/"), stats)
    start = time.monotonic()
    deadline = start + args.duration
    threads = [threading.Thread(target=load.worker, args=(deadline,), daemon=True) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    samples = []
    print(f"{'t(s)':>6} {'requests':>9} {'req/s':>7} {'errors':>6} {'rss(MiB)':>9}", flush=True)
    last_requests, last_time = 0, start
    while any(t.is_alive() for t in threads):
        time.sleep(min(args.interval, max(0.1, deadline - time.monotonic() + 0.5)))
        now = time.monotonic()
        rss = rss_kib(args.pid)
        samples.append((now - start, rss))
        with stats.lock:
            requests_now, errors = stats.requests, stats.errors
        rate = (requests_now - last_requests) / max(now - last_time, 1e-9)
        last_requests, last_time = requests_now, now
        print(f"{now - start:6.0f} {requests_now:9d} {rate:7.1f} {errors:6d} {rss / 1024:9.1f}", flush=True)

    elapsed = time.monotonic() - start
    warm = [rss for t, rss in samples if t >= elapsed * 0.25] or [rss for _, rss in samples]
    growth = (warm[-1] - warm[0]) / warm[0] if warm and warm[0] else 0.0
    print()
    print(f"duration {elapsed:.0f} s, {stats.requests} requests ({stats.requests / elapsed:.1f}/s), "
          f"{stats.errors} unexpected errors, {stats.deliberate} deliberate bad requests (all refused)")
    print("by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.by_kind.items())))
    print(f"RSS after warm-up (from t={elapsed * 0.25:.0f} s): {warm[0] / 1024:.1f} -> {warm[-1] / 1024:.1f} MiB "
          f"({growth:+.1%}); max {max(r for _, r in samples) / 1024:.1f} MiB")
    for line in stats.first_errors:
        print(f"error: {line}")
    clean = stats.errors == 0 and growth <= args.max_rss_growth
    print("result: " + ("clean" if clean else "NOT clean"))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
