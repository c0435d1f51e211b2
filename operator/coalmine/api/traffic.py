"""``spec.traffic``: how client requests are split between stable and canary."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from coalmine.api.base import ApiModel
from coalmine.api.rules import Rule, RuleChecked


class RouterKind(StrEnum):
    """Who enforces the traffic split."""

    REPLICAS = "replicas"
    """One Service over both Deployments; the split follows the ratio of ready pods. No mesh."""

    GATEWAY_API = "gatewayAPI"
    """An HTTPRoute with weighted backends, one Service per revision; exact weights."""


class ParentRef(ApiModel):
    """The Gateway the HTTPRoute attaches to."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: str | None = None
    section_name: str | None = None
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"


class GatewayApiRoute(ApiModel):
    """Settings of the ``gatewayAPI`` router."""

    parent_refs: Annotated[list[ParentRef], Field(min_length=1, max_length=16)]
    hostnames: Annotated[list[str], Field(max_length=16)] = []
    path_prefix: str = "/"


class Traffic(ApiModel, RuleChecked):
    """Traffic routing."""

    router: RouterKind = RouterKind.REPLICAS
    """``replicas`` (default, no mesh needed) or ``gatewayAPI``. Immutable."""

    # Spelled as the Gateway API project spells itself, not the generated "gatewayApi".
    gateway_api: Annotated[GatewayApiRoute | None, Field(alias="gatewayAPI")] = None
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Port of the client Service."""

    scale_down_stable: bool = False
    """``replicas`` router only: shrink stable as the canary grows (saves pods, but a rollback
    then has less capacity ready). By default stable keeps all its pods until promotion."""

    __rules__ = (
        Rule(
            cel="self.router != 'gatewayAPI' || has(self.gatewayAPI)",
            message="spec.traffic.gatewayAPI: required when spec.traffic.router is gatewayAPI",
            holds=lambda t: t.router != RouterKind.GATEWAY_API or t.gateway_api is not None,
            field_path=".gatewayAPI",
        ),
    )
