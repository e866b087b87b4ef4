"""Signing in to the dashboard from a test client."""

from __future__ import annotations

import re

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
