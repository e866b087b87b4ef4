from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from didhub.accounts.models import Account, Agent
from didhub.accounts.settings import AccountSettingsView, UnassignedBehaviour
from didhub.inputs import RequestModel
from didhub.outputs import Data, Notice, ResponseModel, when


class TenantCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)


class AgentCreate(RequestModel):
    tenant_id: str
    name: str = Field(min_length=1, max_length=200)
    sip_uri: str | None = Field(default=None, max_length=255)


class AgentUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    sip_uri: str | None = Field(default=None, max_length=255)


class UnassignedRequest(RequestModel):
    """One unassigned-number behaviour; which fields an action takes is
    checked by ``accounts.settings.validate_unassigned`` (CLI and API alike)."""

    action: str
    text: str | None = None
    mailbox: str | None = None
    destination: str | None = None


class SettingsPatch(RequestModel):
    """A partial update: absent fields stay, ``null`` inherits."""

    default_cnam: str | None = None
    unassigned: UnassignedRequest | None = None

    @model_validator(mode="after")
    def _something(self) -> SettingsPatch:
        if not self.model_fields_set & {"default_cnam", "unassigned"}:
            raise ValueError("give default_cnam and/or unassigned")
        return self


# ------------------------------------------------------------------ answers


class AccountOut(ResponseModel):
    id: str
    kind: str = Field(description="partner or tenant")
    name: str
    partner_id: str | None
    created_at: str | None


class AgentOut(ResponseModel):
    id: str
    tenant_id: str
    name: str
    sip_uri: str | None
    created_at: str | None


class UnassignedOut(ResponseModel):
    """Fields an action doesn't take are left out."""

    action: str
    text: str | None = None
    mailbox: str | None = None
    destination: str | None = None


class EffectiveCnam(ResponseModel):
    name: str | None
    source: str


class EffectiveUnassigned(ResponseModel):
    action: str | None = None
    text: str | None = None
    mailbox: str | None = None
    destination: str | None = None
    source: str


class EffectiveSettings(ResponseModel):
    default_cnam: EffectiveCnam
    unassigned: EffectiveUnassigned


class AccountSettingsOut(ResponseModel):
    account_id: str
    kind: str
    default_cnam: str | None
    unassigned: UnassignedOut | None
    effective: EffectiveSettings
    updated_at: str | None


class SettingsAnswer(Data[AccountSettingsOut]):
    meta: Notice | None = Field(
        default=None, description="Only when default_cnam changed: carriers' caches"
    )


# ------------------------------------------------------------------ answers


def account(item: Account) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "name": item.name,
        "partner_id": item.parent_id,
        "created_at": when(item.created_at),
    }


def agent(item: Agent) -> dict[str, Any]:
    return {
        "id": item.id,
        "tenant_id": item.tenant_id,
        "name": item.name,
        "sip_uri": item.sip_uri,
        "created_at": when(item.created_at),
    }


def unassigned_behaviour(item: UnassignedBehaviour | None) -> dict[str, Any] | None:
    if item is None:
        return None
    shaped: dict[str, Any] = {"action": item.action}
    for name in ("text", "mailbox", "destination"):
        if getattr(item, name) is not None:
            shaped[name] = getattr(item, name)
    return shaped


def account_settings(view: AccountSettingsView) -> dict[str, Any]:
    return {
        "account_id": view.account_id,
        "kind": view.account_kind,
        "default_cnam": view.default_cnam,
        "unassigned": unassigned_behaviour(view.unassigned),
        "effective": {
            "default_cnam": {"name": view.effective_cnam, "source": view.effective_cnam_source},
            "unassigned": {
                **(unassigned_behaviour(view.effective_unassigned) or {}),
                "source": view.effective_unassigned_source,
            },
        },
        "updated_at": when(view.updated_at),
    }
