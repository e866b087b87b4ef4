"""Who may use the SIP edge's endpoints (``/routing/inbound``, ``/billing/usage``):
routing answers name tenants, agents and SIP URIs, and usage records move money.

The edge presents a bearer token: ``DIDHUB_EDGE_TOKEN``, or, unset, one
generated on first start into ``DIDHUB_EDGE_TOKEN_FILE`` (``didhub edge token``
prints it for Kamailio's ``EDGE_TOKEN``). A request from this machine is not
trusted for being local, because a reverse proxy on the same host makes every
request local; ``DIDHUB_EDGE_TRUST_LOOPBACK`` turns that trust on for labs.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from didhub import keyfile
from didhub.config import Settings
from didhub.errors import DidhubError, Unauthorized

LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def edge_token(settings: Settings) -> str:
    if settings.edge_token:
        return settings.edge_token
    return keyfile.read_or_create(
        Path(settings.edge_token_file), "a SIP edge token", "DIDHUB_EDGE_TOKEN"
    )


class EdgeAuth:
    """The check, with the token read once (the fast routing path asks it per
    lookup)."""

    def __init__(self, settings: Settings) -> None:
        self._token = edge_token(settings).encode()
        self._trust_loopback = settings.edge_trust_loopback

    def refusal(self, client: str, authorization: str | None) -> DidhubError | None:
        """Why a caller may not use the edge's endpoints, or ``None``."""
        if authorization is None and self._trust_loopback and client in LOCAL_CLIENTS:
            return None
        if authorization is None:
            return Unauthorized(
                "the SIP edge's endpoints need 'Authorization: Bearer <edge token>' "
                "(DIDHUB_EDGE_TOKEN, or `didhub edge token` on the server)"
            )
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), self._token
        ):
            return Unauthorized("the SIP edge token is not valid")
        return None
