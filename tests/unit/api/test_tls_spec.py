"""`spec.tls`: modes, Secrets required iff mode Secret, durations, and the CEL rules the API
server enforces (a mode is fixed once the cluster exists)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from etcd_operator.api import InvalidSpecError, parse_spec
from etcd_operator.api.crd import ETCD_CLUSTER, openapi_schema
from etcd_operator.api.duration import parse_duration
from etcd_operator.api.structural import apply_defaults, value_errors
from etcd_operator.api.tls_spec import MODE_CHANGE_MESSAGE
from etcd_operator.naming import MemberTLS


def test_tls_is_disabled_by_default_with_a_90_day_certificate_renewed_30_days_before() -> None:
    tls = parse_spec({}).tls
    assert (tls.peer.mode, tls.client.mode) == ("Disabled", "Disabled")
    assert tls.duration == timedelta(days=90) and tls.renewal_margin == timedelta(days=30)
    assert tls.member_tls() == MemberTLS() and not tls.auto


def test_the_server_defaults_tls_like_the_model() -> None:
    spec_schema = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]
    defaulted = apply_defaults(spec_schema, {"tls": {"peer": {"mode": "Auto"}}})
    assert value_errors(spec_schema, defaulted) == []
    assert defaulted["tls"]["client"] == {"mode": "Disabled", "allowPlaintext": False}
    assert defaulted["tls"]["certificateDuration"] == "2160h"
    assert parse_spec(defaulted).tls.member_tls() == MemberTLS(peer=True)


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        ({"peer": {"mode": "Auto"}}, MemberTLS(peer=True)),
        ({"client": {"mode": "Auto"}}, MemberTLS(client=True)),
        (
            {"client": {"mode": "Auto", "allowPlaintext": True}},
            MemberTLS(client=True, client_plaintext=True),
        ),
        ({"client": {"mode": "Disabled", "allowPlaintext": True}}, MemberTLS()),
        (
            {
                "peer": {"mode": "Secret", "secretName": "p"},
                "client": {"mode": "Secret", "secretName": "s", "operatorSecretName": "o"},
            },
            MemberTLS(peer=True, client=True),
        ),
    ],
)
def test_how_members_serve_follows_the_modes(tls: dict[str, Any], expected: MemberTLS) -> None:
    assert parse_spec({"tls": tls}).tls.member_tls() == expected


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"peer": {"mode": "Secret"}}, "tls.peer.secretName is required"),
        ({"peer": {"mode": "Auto", "secretName": "x"}}, "tls.peer.secretName is required"),
        ({"client": {"mode": "Secret", "secretName": "x"}}, "operatorSecretName is required"),
        ({"client": {"mode": "Secret", "operatorSecretName": "x"}}, "client.secretName is req"),
        ({"peer": {"mode": "Sometimes"}}, "spec.tls.peer.mode"),
        ({"certificateDuration": "10s"}, "at least 1m"),
        ({"certificateDuration": "2m", "renewBefore": "10s"}, "at least 30s"),
        ({"certificateDuration": "2m", "renewBefore": "2m"}, "shorter than"),
        ({"renewBefore": "90 days"}, "spec.tls.renewBefore"),
        ({"peer": {"mode": "Secret", "secretName": "Not_A_Name"}}, "secretName"),
    ],
)
def test_invalid_tls_specs_are_refused(tls: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec({"tls": tls})
    assert message in str(caught.value)


def test_a_short_lifetime_for_tests_is_allowed() -> None:
    tls = parse_spec({"tls": {"certificateDuration": "2m", "renewBefore": "90s"}}).tls
    assert tls.duration - tls.renewal_margin == timedelta(seconds=30)


def test_durations_read_like_go() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1.5s") == timedelta(seconds=1.5)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for bad in ("", "10", "-1h", "1d", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def _rules(node: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = node.get("x-kubernetes-validations", [])
    return rules


def test_cel_rules_guard_secrets_durations_and_mode_changes() -> None:
    spec = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]
    tls = spec["properties"]["tls"]
    assert any("renewBefore" in r["rule"] for r in _rules(tls))
    peer, client = tls["properties"]["peer"], tls["properties"]["client"]
    assert any("has(self.secretName)" in r["rule"] for r in _rules(peer))
    assert any("has(self.operatorSecretName)" in r["rule"] for r in _rules(client))
    assert peer["properties"]["mode"]["enum"] == ["Disabled", "Auto", "Secret"]
    duration = tls["properties"]["certificateDuration"]
    assert any("duration('1m')" in r["rule"] for r in _rules(duration))
    switching = [r for r in _rules(spec) if MODE_CHANGE_MESSAGE in r["message"]]
    assert len(switching) == 2
    assert all("oldSelf.tls" in r["rule"] for r in switching)
