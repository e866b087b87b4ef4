"""Contract tests for the Stripe gateway, at the HTTP layer.

The real ``stripe`` client talks to a small HTTP stub on 127.0.0.1 that answers
with payloads written from Stripe's public API reference (tests/fixtures/stripe/).
Each test checks what Stripe would check (path, form-encoded body, Authorization
and Idempotency-Key headers) and what a user would see (succeeded, declined with a
decline code, PaymentOutcomeUnknown, StripeConfigurationError, PaymentDeclined).
One test uses respx to fail the connection at the httpx layer. Nothing reaches
the internet.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from didhub.payments import stripe_gateway
from didhub.payments.base import CardDetails, PaymentDeclined, PaymentOutcomeUnknown
from didhub.payments.stripe_gateway import (
    StripeConfigurationError,
    StripeGateway,
    to_minor_units,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stripe"
API_KEY = "sk_test_51HdidhubFAKEkey0000000000000000000000000000001234"
CUSTOMER = "cus_NffrFeUfNV2Hib"
PM = "pm_1Q0PsIJvEtkwdCNYMSaVuRz6"
CARD = CardDetails(
    token=PM, last4="4242", brand="visa", exp_month=8, exp_year=2031, customer=CUSTOMER
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# -- the stub Stripe ------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: str

    @property
    def form(self) -> dict[str, str]:
        pairs = parse_qsl(self.body, keep_blank_values=True, strict_parsing=bool(self.body))
        form = dict(pairs)
        assert len(form) == len(pairs), f"repeated form fields in {self.body!r}"
        return form


class StripeStub:
    """Answers scripted replies per (method, path), in order; the last one repeats."""

    def __init__(self) -> None:
        self._replies: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                reply = stub._record(
                    Recorded(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                if reply.delay:
                    time.sleep(reply.delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Request-Id", f"req_stub{len(stub.requests)}")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self._replies[(method, path)] = list(replies)

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._replies.get((request.method, request.path))
            if not queue:
                return Reply(
                    404,
                    {
                        "error": {
                            "message": f"Unrecognized request URL ({request.method}: "
                            f"{request.path}).",
                            "type": "invalid_request_error",
                        }
                    },
                )
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[StripeStub]:
    server = StripeStub()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_gateway(stub: StripeStub) -> Iterator[Callable[..., StripeGateway]]:
    made: list[StripeGateway] = []

    def make(timeout: float = 5.0, max_retries: int = 0) -> StripeGateway:
        gateway = StripeGateway(
            API_KEY, base_url=stub.url, timeout=timeout, max_retries=max_retries
        )
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def no_rate_limit_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(stripe_gateway, "_sleep", slept.append)
    return slept


def charge(gateway: StripeGateway, amount: str = "12.34", key: str = "topup-1") -> Any:
    return gateway.charge(
        card=CARD,
        amount=Decimal(amount),
        currency="USD",
        idempotency_key=key,
        description="didhub wallet top-up",
    )


def assert_stripe_headers(request: Recorded) -> None:
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers.get("stripe-version")


PI_PATH = "/v1/payment_intents"
ATTACH_PATH = f"/v1/payment_methods/{PM}/attach"


# -- charge ---------------------------------------------------------------------------


def test_charge_success_sends_what_stripe_expects(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(200, fixture("payment_intent_succeeded")))

    result = charge(make_gateway())

    assert result.status == "succeeded"
    assert result.charge_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert result.decline_code is None
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", PI_PATH)
    assert_stripe_headers(request)
    assert request.headers["idempotency-key"] == "topup-1"
    assert request.form == {
        "amount": "1234",
        "currency": "usd",
        "customer": CUSTOMER,
        "payment_method": PM,
        "confirm": "true",
        "off_session": "true",
        "description": "didhub wallet top-up",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
    }


@pytest.mark.parametrize(
    ("amount", "cents"),
    [("12.34", 1234), ("10", 1000), ("12.340", 1234), ("0.01", 1), ("999999.99", 99999999)],
)
def test_amounts_go_in_cents(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway], amount: str, cents: int
) -> None:
    stub.on("POST", PI_PATH, Reply(200, fixture("payment_intent_succeeded")))
    charge(make_gateway(), amount=amount)
    assert stub.requests[0].form["amount"] == str(cents)


@pytest.mark.parametrize("amount", ["12.345", "0.001", "0", "-5.00", "NaN", "Infinity"])
def test_amounts_stripe_cannot_take_are_refused_before_any_request(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway], amount: str
) -> None:
    with pytest.raises(ValueError):
        charge(make_gateway(), amount=amount)
    assert stub.requests == []


def test_minor_units_refuses_floats_and_other_exponents() -> None:
    with pytest.raises(TypeError):
        to_minor_units(12.34, "usd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two-decimal"):
        to_minor_units(Decimal("1234"), "JPY")
    with pytest.raises(ValueError, match="two-decimal"):
        to_minor_units(Decimal("1.234"), "kwd")
    with pytest.raises(ValueError):
        to_minor_units(Decimal("1"), "dollars")
    assert to_minor_units(Decimal("12.34"), "EUR") == 1234


def test_insufficient_funds_is_a_decline_with_stripes_code_and_intent(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(402, fixture("error_card_declined_insufficient_funds")))

    result = charge(make_gateway(max_retries=2))

    assert result.status == "declined"
    assert result.charge_id == "pi_3MtwD0LkdIwHu7ix1a3qqXz2"
    assert result.decline_code == "insufficient_funds"
    assert result.message == "Your card has insufficient funds."
    assert len(stub.requests) == 1  # a decline is an answer: never retried


def test_card_error_without_a_payment_intent_still_declines(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    body = fixture("error_card_declined_insufficient_funds")
    del body["error"]["payment_intent"]
    body["error"]["decline_code"] = "generic_decline"
    stub.on("POST", PI_PATH, Reply(402, body))

    result = charge(make_gateway())

    assert (result.status, result.charge_id, result.decline_code) == (
        "declined",
        None,
        "generic_decline",
    )


def test_off_session_authentication_required_402(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(402, fixture("error_authentication_required")))

    result = charge(make_gateway())

    assert result.status == "declined"
    assert result.charge_id == "pi_3MtwDPLkdIwHu7ix0Q6BqJ4e"
    assert result.decline_code == "authentication_required"


def test_intent_left_requiring_action_is_authentication_required(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(200, fixture("payment_intent_requires_action")))

    result = charge(make_gateway())

    assert result.status == "declined"
    assert result.charge_id == "pi_3MtwC9LkdIwHu7ix0gRjBqJk"
    assert result.decline_code == "authentication_required"


def test_intent_requiring_a_payment_method_uses_last_payment_error(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    intent = fixture("error_authentication_required")["error"]["payment_intent"]
    stub.on("POST", PI_PATH, Reply(200, intent))

    result = charge(make_gateway())

    assert (result.status, result.decline_code) == ("declined", "authentication_required")
    assert result.charge_id == "pi_3MtwDPLkdIwHu7ix0Q6BqJ4e"


def test_intent_still_processing_is_outcome_unknown(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    intent = fixture("payment_intent_succeeded") | {"status": "processing"}
    stub.on("POST", PI_PATH, Reply(200, intent))

    with pytest.raises(PaymentOutcomeUnknown):
        charge(make_gateway())


def test_timeout_retries_with_the_same_key_then_outcome_unknown(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(200, fixture("payment_intent_succeeded"), delay=1.0))

    started = time.monotonic()
    with pytest.raises(PaymentOutcomeUnknown):
        charge(make_gateway(timeout=0.2, max_retries=1), key="topup-slow")

    assert time.monotonic() - started < 3.0
    assert len(stub.requests) == 2
    assert {r.headers["idempotency-key"] for r in stub.requests} == {"topup-slow"}
    assert stub.requests[0].body == stub.requests[1].body


def test_500_then_success_through_the_clients_retries(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on(
        "POST",
        PI_PATH,
        Reply(500, fixture("error_api_error")),
        Reply(200, fixture("payment_intent_succeeded")),
    )

    result = charge(make_gateway(max_retries=2), key="topup-500")

    assert result.status == "succeeded"
    assert len(stub.requests) == 2
    assert [r.headers["idempotency-key"] for r in stub.requests] == ["topup-500"] * 2


def test_5xx_after_all_retries_is_outcome_unknown(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(503, fixture("error_api_error")))

    with pytest.raises(PaymentOutcomeUnknown):
        charge(make_gateway(max_retries=2))

    assert len(stub.requests) == 3


def test_429_is_retried_with_the_same_key(
    stub: StripeStub,
    make_gateway: Callable[..., StripeGateway],
    no_rate_limit_sleep: list[float],
) -> None:
    stub.on(
        "POST",
        PI_PATH,
        Reply(429, fixture("error_rate_limit")),
        Reply(200, fixture("payment_intent_succeeded")),
    )

    result = charge(make_gateway(max_retries=2), key="topup-429")

    assert result.status == "succeeded"
    assert [r.headers["idempotency-key"] for r in stub.requests] == ["topup-429"] * 2
    assert len(no_rate_limit_sleep) == 1 and 0 < no_rate_limit_sleep[0] <= 5


def test_429_after_all_retries_is_outcome_unknown(
    stub: StripeStub,
    make_gateway: Callable[..., StripeGateway],
    no_rate_limit_sleep: list[float],
) -> None:
    stub.on("POST", PI_PATH, Reply(429, fixture("error_rate_limit")))

    with pytest.raises(PaymentOutcomeUnknown):
        charge(make_gateway(max_retries=2))

    assert len(stub.requests) == 3
    assert len(no_rate_limit_sleep) == 2


def test_invalid_api_key_is_a_configuration_error(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", PI_PATH, Reply(401, fixture("error_invalid_api_key")))

    with pytest.raises(StripeConfigurationError, match="Invalid API Key provided") as caught:
        charge(make_gateway(max_retries=2))

    assert caught.value.http_status == 401
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    "payload", ["error_parameter_unknown", "error_idempotency_key_reused", "error_no_such_customer"]
)
def test_400_invalid_request_is_a_configuration_error_not_a_decline(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway], payload: str
) -> None:
    body = fixture(payload)
    stub.on("POST", PI_PATH, Reply(400, body))

    with pytest.raises(StripeConfigurationError) as caught:
        charge(make_gateway())

    assert str(caught.value) == body["error"]["message"]
    assert caught.value.http_status == 400


def test_connection_refused_is_outcome_unknown_respx() -> None:
    gateway = StripeGateway(API_KEY, max_retries=1)  # the real https://api.stripe.com
    try:
        with respx.mock(assert_all_mocked=True) as router:
            route = router.post("https://api.stripe.com/v1/payment_intents").mock(
                side_effect=httpx.ConnectError("connection refused")
            )
            with pytest.raises(PaymentOutcomeUnknown):
                charge(gateway, key="topup-offline")
        assert route.call_count == 2
        assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {"topup-offline"}
    finally:
        gateway.close()


def test_charge_needs_a_key_and_a_customer(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    gateway = make_gateway()
    with pytest.raises(ValueError):
        charge(gateway, key="")
    with pytest.raises(ValueError):
        gateway.charge(
            card=CardDetails(token=PM, last4="4242", brand="visa", exp_month=8, exp_year=2031),
            amount=Decimal("1.00"),
            currency="usd",
            idempotency_key="k",
            description="d",
        )
    assert stub.requests == []


def test_api_key_is_never_logged_nor_shown(
    stub: StripeStub,
    make_gateway: Callable[..., StripeGateway],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub.on("POST", PI_PATH, Reply(503, fixture("error_api_error")))
    caplog.set_level(logging.DEBUG)
    gateway = make_gateway()

    with pytest.raises(PaymentOutcomeUnknown) as caught:
        charge(gateway)

    assert caplog.records  # something was logged, and none of it is the key
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(gateway)
    assert API_KEY not in str(caught.value)


# -- attach_card ----------------------------------------------------------------------


def test_attach_card_creates_a_customer_when_there_is_none(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", "/v1/customers", Reply(200, fixture("customer")))
    stub.on("POST", ATTACH_PATH, Reply(200, fixture("payment_method_card")))

    card = make_gateway().attach_card("acc_01HZX3", PM, None)

    assert card == CardDetails(
        token=PM, last4="4242", brand="visa", exp_month=8, exp_year=2031, customer=CUSTOMER
    )
    create, attach = stub.requests
    assert (create.method, create.path) == ("POST", "/v1/customers")
    assert create.form == {"metadata[didhub_account_id]": "acc_01HZX3"}
    assert create.headers["idempotency-key"] == "didhub-customer-acc_01HZX3"
    assert (attach.method, attach.path) == ("POST", ATTACH_PATH)
    assert attach.form == {"customer": CUSTOMER}
    for request in stub.requests:
        assert_stripe_headers(request)


def test_attach_card_reuses_the_given_customer(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", ATTACH_PATH, Reply(200, fixture("payment_method_card")))

    card = make_gateway().attach_card("acc_01HZX3", PM, CUSTOMER)

    assert card.customer == CUSTOMER and card.token == PM and card.last4 == "4242"
    [attach] = stub.requests
    assert attach.path == ATTACH_PATH
    assert attach.form == {"customer": CUSTOMER}


def test_attach_unknown_payment_method_is_declined(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on(
        "POST",
        "/v1/payment_methods/pm_doesNotExist/attach",
        Reply(404, fixture("error_no_such_payment_method")),
    )

    with pytest.raises(PaymentDeclined, match="No such PaymentMethod: 'pm_doesNotExist'"):
        make_gateway().attach_card("acc_01HZX3", "pm_doesNotExist", CUSTOMER)


def test_attach_card_error_is_declined(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", ATTACH_PATH, Reply(402, fixture("error_card_declined_on_attach")))

    with pytest.raises(PaymentDeclined, match="Your card was declined."):
        make_gateway().attach_card("acc_01HZX3", PM, CUSTOMER)


def test_attach_to_unknown_customer_is_our_bug(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", ATTACH_PATH, Reply(400, fixture("error_no_such_customer")))

    with pytest.raises(StripeConfigurationError, match="No such customer"):
        make_gateway().attach_card("acc_01HZX3", PM, "cus_gone")


@pytest.mark.parametrize("token", ["tok_visa", "4242424242424242", "pm_../../v1/charges", ""])
def test_attach_refuses_what_is_not_a_payment_method_id(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway], token: str
) -> None:
    with pytest.raises(PaymentDeclined):
        make_gateway().attach_card("acc_01HZX3", token, CUSTOMER)
    assert stub.requests == []


def test_attach_with_stripe_down_is_outcome_unknown(
    stub: StripeStub, make_gateway: Callable[..., StripeGateway]
) -> None:
    stub.on("POST", ATTACH_PATH, Reply(500, fixture("error_api_error")))

    with pytest.raises(PaymentOutcomeUnknown):
        make_gateway().attach_card("acc_01HZX3", PM, CUSTOMER)
