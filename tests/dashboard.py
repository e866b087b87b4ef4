"""Signing in to the dashboard from a test client."""

from __future__ import annotations

import atexit
import re
from typing import Any

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, **fields: str) -> str:
    """Sign in through the form; answers the session's CSRF token."""
    token = csrf_of(client.get("/dashboard/login").text)
    method = "api_key" if "api_key" in fields else "password"
    answer = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "method": method, **fields},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(answer.headers["location"]).text)


_BROWSER: dict[str, Any] = {}


def shared_browser(executable: str, args: list[str]) -> Any:
    """One Playwright and one chromium for the whole run, whichever browser
    test module asks first: Playwright's sync API can't be started twice in
    one process while the first is running. Closed when the run ends."""
    if "browser" not in _BROWSER:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _BROWSER["playwright"] = playwright
        _BROWSER["browser"] = playwright.chromium.launch(executable_path=executable, args=args)

        def stop() -> None:
            _BROWSER["browser"].close()
            playwright.stop()

        atexit.register(stop)
    return _BROWSER["browser"]
