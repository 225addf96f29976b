"""EMQX's HTTP authentication and authorisation hooks, served by the API.

Configure EMQX's HTTP authenticator with ``POST {api}/api/v1/mqtt/emqx/authenticate`` and body
``{"username": "${username}", "password": "${password}", "clientid": "${clientid}"}``, and its HTTP
authoriser with ``POST {api}/api/v1/mqtt/emqx/authorize`` and body
``{"username": "${username}", "topic": "${topic}", "action": "${action}", "clientid": "${clientid}"}``;
both with the header ``Authorization: Bearer <FACTORYOPS_MQTT__EMQX_HOOK_SECRET>``. The answers
follow EMQX's documented format: ``{"result": "allow" | "deny" | "ignore", "is_superuser": false}``.
The rules are the embedded broker's: a device publishes only on its own topic.
"""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from factoryops.core.errors import ApiError
from factoryops.devices.mqtt_auth import DeviceAuth, MqttIdentity, device_may_publish, service_may_subscribe

emqx = APIRouter(prefix="/mqtt/emqx", tags=["mqtt"])
_bearer = HTTPBearer(auto_error=False)


class AuthnRequest(BaseModel):
    username: str = Field("", max_length=200)
    password: str = Field("", max_length=200)
    clientid: str = Field("", max_length=200)


class AuthzRequest(BaseModel):
    username: str = Field("", max_length=200)
    topic: str = Field(..., max_length=500)
    action: Literal["publish", "subscribe", "all"]
    clientid: str = Field("", max_length=200)


class HookResult(BaseModel):
    result: Literal["allow", "deny", "ignore"]
    is_superuser: bool = False


def broker_hook(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> DeviceAuth:
    settings = request.app.state.platform.settings
    secret = settings.mqtt.emqx_hook_secret.get_secret_value() if settings.mqtt.emqx_hook_secret else ""
    if not secret:
        raise ApiError(404, "not_found", "The EMQX hooks are off (set FACTORYOPS_MQTT__EMQX_HOOK_SECRET).")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise ApiError(401, "not_authenticated", "The broker hook secret is missing or wrong.")
    password = settings.mqtt.password.get_secret_value() if settings.mqtt.password else ""
    return DeviceAuth(request.app.state.platform.db, settings.mqtt.username or "", password)


@emqx.post("/authenticate", response_model=HookResult, summary="EMQX HTTP authentication hook")
def authenticate(body: AuthnRequest, hook: DeviceAuth = Depends(broker_hook)) -> HookResult:
    if not hook.service_username:
        return HookResult(result="ignore")
    identity = hook.authenticate(body.clientid, body.username, body.password)
    return HookResult(result="allow" if identity else "deny")


@emqx.post("/authorize", response_model=HookResult, summary="EMQX HTTP authorisation hook")
def authorize(body: AuthzRequest, hook: DeviceAuth = Depends(broker_hook)) -> HookResult:
    # EMQX calls this only for clients it authenticated (through the hook above), so the
    # username alone says who it is.
    if hook.service_username and hmac.compare_digest(body.username, hook.service_username):
        identity = MqttIdentity("service")
    else:
        factory_id, _, device_id = body.username.partition("/")
        identity = MqttIdentity("device", factory_id, device_id)
    allowed = (
        device_may_publish(identity, body.topic)
        if body.action == "publish"
        else service_may_subscribe(identity, body.topic)
        if body.action == "subscribe"
        else False
    )
    return HookResult(result="allow" if allowed else "deny")


routers = [emqx]
