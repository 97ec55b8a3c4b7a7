"""`EtcdCluster.spec.tls`: mutual TLS between members (peer) and towards clients (client).

Each side is `Disabled`, `Auto` (the operator runs a per-cluster CA and issues and renews
the certificates) or `Secret` (the user brings Secrets in the cert-manager layout: tls.crt,
tls.key, ca.crt).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.common import ApiModel, cel, validations
from etcd_operator.api.duration import DURATION_PATTERN, parse_duration
from etcd_operator.naming import MemberTLS

TLSMode = Literal["Disabled", "Auto", "Secret"]
# Floors that still leave the operator (a round at most every 15 s) and the kubelet
# (Secret volumes re-rendered within about a minute) time to roll a certificate.
MIN_CERTIFICATE_DURATION = "1m"
MIN_RENEW_BEFORE = "30s"
MODE_CHANGE_MESSAGE = (
    "may only go from Disabled to Auto or Secret (TLS is then switched on one member at a time,"
    " without downtime); turning TLS off or moving between Auto and Secret is not supported"
)
_SECRET_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _secret_name(description: str) -> Any:
    return Field(default=None, max_length=253, pattern=_SECRET_NAME, description=description)


class PeerTLS(ApiModel):
    """TLS between members (Raft, port 2380)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.mode) && self.mode == 'Secret') == has(self.secretName)",
                "tls.peer.secretName is required when tls.peer.mode is Secret, and only then",
            ),
        )
    )

    mode: TLSMode = Field(
        default="Disabled",
        description=(
            "Disabled: plaintext. Auto: certificates issued and renewed by the operator. "
            "Secret: secretName's certificate. May be switched on for a running cluster (from"
            " Disabled), never off."
        ),
    )
    secret_name: str | None = _secret_name(
        "Mode Secret: a Secret with tls.crt, tls.key and ca.crt, the certificate every member "
        "serves and presents to the others (serverAuth and clientAuth usages; names must "
        "cover <member>.<cluster>.<namespace>.svc.<domain>)."
    )

    @model_validator(mode="after")
    def _secret_iff_mode(self) -> Self:
        if (self.mode == "Secret") != (self.secret_name is not None):
            raise ValueError(
                "tls.peer.secretName is required when tls.peer.mode is Secret, and only then"
            )
        return self


class ClientTLS(ApiModel):
    """TLS towards clients (gRPC, port 2379); clients must present a certificate."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.mode) && self.mode == 'Secret') == has(self.secretName)",
                "tls.client.secretName is required when tls.client.mode is Secret, and only then",
            ),
            cel(
                "(has(self.mode) && self.mode == 'Secret') == has(self.operatorSecretName)",
                "tls.client.operatorSecretName is required when tls.client.mode is Secret, "
                "and only then",
            ),
        )
    )

    mode: TLSMode = Field(
        default="Disabled",
        description=(
            "Disabled: plaintext. Auto: certificates issued and renewed by the operator "
            "(applications may mount the Secret <cluster>-client-tls). Secret: secretName's "
            "certificate. May be switched on for a running cluster (from Disabled), never off."
        ),
    )
    secret_name: str | None = _secret_name(
        "Mode Secret: a Secret with tls.crt, tls.key and ca.crt, the members' serving "
        "certificate; its ca.crt is the CA that client certificates must chain to."
    )
    operator_secret_name: str | None = _secret_name(
        "Mode Secret: a Secret with tls.crt, tls.key and ca.crt, the client certificate the "
        "operator itself uses (with auth enabled its common name must be root)."
    )
    allow_plaintext: bool = Field(
        default=False,
        description="Members also serve plaintext clients on the client port.",
    )

    @model_validator(mode="after")
    def _secrets_iff_mode(self) -> Self:
        secret = self.mode == "Secret"
        if secret != (self.secret_name is not None):
            raise ValueError(
                "tls.client.secretName is required when tls.client.mode is Secret, and only then"
            )
        if secret != (self.operator_secret_name is not None):
            raise ValueError(
                "tls.client.operatorSecretName is required when tls.client.mode is Secret, "
                "and only then"
            )
        return self


def _object_default() -> dict[str, Any]:
    return {"default": {}}


class TLSSpec(ApiModel):
    """Mutual TLS of the cluster's peer and client traffic."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                # has() guards: the API server also checks rules against the default {}.
                "!has(self.renewBefore) || !has(self.certificateDuration) || "
                "duration(self.renewBefore) < duration(self.certificateDuration)",
                "tls.renewBefore must be shorter than tls.certificateDuration",
            ),
        )
    )

    peer: PeerTLS = Field(
        default_factory=PeerTLS,
        description="TLS between members.",
        json_schema_extra=_object_default(),
    )
    client: ClientTLS = Field(
        default_factory=ClientTLS,
        description="TLS towards clients.",
        json_schema_extra=_object_default(),
    )
    certificate_duration: str = Field(
        default="2160h",
        pattern=DURATION_PATTERN,
        max_length=32,
        description=(
            f"Mode Auto: lifetime of issued certificates (at least {MIN_CERTIFICATE_DURATION})."
        ),
        json_schema_extra=validations(
            cel(
                f"duration(self) >= duration('{MIN_CERTIFICATE_DURATION}')",
                f"tls.certificateDuration must be at least {MIN_CERTIFICATE_DURATION}",
            )
        ),
    )
    renew_before: str = Field(
        default="720h",
        pattern=DURATION_PATTERN,
        max_length=32,
        description=(
            "Mode Auto: a certificate is re-issued when less than this remains of it "
            f"(at least {MIN_RENEW_BEFORE}, less than certificateDuration)."
        ),
        json_schema_extra=validations(
            cel(
                f"duration(self) >= duration('{MIN_RENEW_BEFORE}')",
                f"tls.renewBefore must be at least {MIN_RENEW_BEFORE}",
            )
        ),
    )

    @model_validator(mode="after")
    def _durations(self) -> Self:
        if self.duration < parse_duration(MIN_CERTIFICATE_DURATION):
            raise ValueError(f"tls.certificateDuration must be at least {MIN_CERTIFICATE_DURATION}")
        if self.renewal_margin < parse_duration(MIN_RENEW_BEFORE):
            raise ValueError(f"tls.renewBefore must be at least {MIN_RENEW_BEFORE}")
        if self.renewal_margin >= self.duration:
            raise ValueError("tls.renewBefore must be shorter than tls.certificateDuration")
        return self

    @property
    def duration(self) -> timedelta:
        return parse_duration(self.certificate_duration)

    @property
    def renewal_margin(self) -> timedelta:
        return parse_duration(self.renew_before)

    @property
    def auto(self) -> bool:
        """Whether the operator runs the cluster's CA (some side is in mode Auto)."""
        return "Auto" in (self.peer.mode, self.client.mode)

    def member_tls(self) -> MemberTLS:
        """How members serve according to this spec (the same for every member)."""
        return MemberTLS(
            peer=self.peer.mode != "Disabled",
            client=self.client.mode != "Disabled",
            client_plaintext=self.client.mode != "Disabled" and self.client.allow_plaintext,
        )


# On the spec: a mode may only be switched on (has() guards: objects stored before `tls`
# existed). The operator does that live (planner/tls_switch.py); going back, or from one CA to
# another, would need both trusted at once, which it does not orchestrate.
TLS_MODE_RULES = tuple(
    cel(
        f"(has(oldSelf.tls) && has(oldSelf.tls.{side}) && has(oldSelf.tls.{side}.mode) ? "
        f"oldSelf.tls.{side}.mode : 'Disabled') in ['Disabled', "
        f"(has(self.tls) && has(self.tls.{side}) && has(self.tls.{side}.mode) ? "
        f"self.tls.{side}.mode : 'Disabled')]",
        f"tls.{side}.mode {MODE_CHANGE_MESSAGE}",
        reason="FieldValueForbidden",
    )
    for side in ("peer", "client")
)
