"""Issuing and reading certificates: a CA, leaves with their names and usages, bundles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from etcd_operator.tls.material import read_material
from etcd_operator.tls.pki import (
    BACKDATE,
    InvalidMaterial,
    LeafProfile,
    bundle,
    facts,
    is_ca,
    issue,
    key_matches,
    load_bundle,
    new_ca,
    signed_by,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROFILE = LeafProfile(
    "demo", ("demo-0.demo.ns.svc.cluster.local", "*.demo.ns.svc"), ("127.0.0.1",), True, True
)


def test_a_leaf_says_what_its_profile_asks_and_is_signed_by_its_ca() -> None:
    ca = new_ca("demo CA", NOW)
    leaf = issue(ca, PROFILE, NOW, timedelta(hours=2))
    seen = facts(leaf.cert)
    assert seen.matches(PROFILE)
    assert seen.not_before == NOW - BACKDATE
    assert seen.not_after == NOW + timedelta(hours=2)
    assert signed_by(leaf.cert, ca.cert)
    assert key_matches(leaf.cert, leaf.key)
    assert is_ca(ca.cert) and not is_ca(leaf.cert)


def test_a_leaf_never_outlives_its_ca() -> None:
    ca = new_ca("short CA", NOW, validity=timedelta(hours=1))
    assert facts(issue(ca, PROFILE, NOW, timedelta(days=90)).cert).not_after == NOW + timedelta(
        hours=1
    )


def test_usages_and_names_are_compared_exactly() -> None:
    ca = new_ca("demo CA", NOW)
    client = LeafProfile("root", client=True)
    seen = facts(issue(ca, client, NOW, timedelta(hours=1)).cert)
    assert seen.matches(client)
    assert seen.client and not seen.server
    assert not seen.matches(LeafProfile("root", client=True, server=True))
    assert not seen.matches(LeafProfile("demo", client=True))
    assert not facts(issue(ca, PROFILE, NOW, timedelta(hours=1)).cert).matches(
        LeafProfile("demo", PROFILE.dns_names[:1], PROFILE.ip_addresses, True, True)
    )


def test_another_ca_or_another_key_is_told_apart() -> None:
    ca, other = new_ca("one", NOW), new_ca("two", NOW)
    leaf = issue(ca, PROFILE, NOW, timedelta(hours=1))
    stranger = issue(other, PROFILE, NOW, timedelta(hours=1))
    assert not signed_by(leaf.cert, other.cert)
    assert not key_matches(leaf.cert, stranger.key)


def test_a_bundle_holds_several_cas_and_any_of_them_signs() -> None:
    old, new = new_ca("old", NOW), new_ca("new", NOW)
    trust = bundle([old.cert, new.cert, old.cert])
    assert len(load_bundle(trust)) == 2, "each CA once"
    assert signed_by(issue(old, PROFILE, NOW, timedelta(hours=1)).cert, trust)
    assert signed_by(issue(new, PROFILE, NOW, timedelta(hours=1)).cert, trust)
    assert bundle([trust]) == trust


@pytest.mark.parametrize("pem", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAA\n"])
def test_what_is_not_a_bundle_is_refused(pem: bytes) -> None:
    with pytest.raises(InvalidMaterial):
        load_bundle(pem)


def test_material_checks_name_the_key_and_never_show_content() -> None:
    ca = new_ca("demo CA", NOW)
    leaf = issue(ca, PROFILE, NOW, timedelta(hours=1))
    other = issue(ca, PROFILE, NOW, timedelta(hours=1))
    good = {"tls.crt": leaf.cert, "tls.key": leaf.key, "ca.crt": ca.cert}
    assert read_material(good, NOW).cert == leaf.cert
    cases = {
        "missing or empty ca.crt": {**good, "ca.crt": b""},
        "tls.key does not belong": {**good, "tls.key": other.key},
        "tls.crt: not a PEM": {**good, "tls.crt": b"nope"},
        "tls.key: not an unencrypted PEM private key": {**good, "tls.key": b"nope"},
    }
    for message, data in cases.items():
        with pytest.raises(InvalidMaterial) as caught:
            read_material(data, NOW)
        assert message in str(caught.value)
        assert b"PRIVATE" not in str(caught.value).encode()
    with pytest.raises(InvalidMaterial, match="expired"):
        read_material(good, NOW + timedelta(hours=2))
