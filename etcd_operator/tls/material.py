"""What a Secret in the cert-manager layout (tls.crt, tls.key, ca.crt) holds, checked.

The messages name the key and what is wrong with it, never any content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from etcd_operator.tls.pki import InvalidMaterial, KeyPair, facts, key_matches, load_bundle

TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_CERT = "ca.crt"
KEYS = (TLS_CERT, TLS_KEY, CA_CERT)


@dataclass(frozen=True)
class Material:
    """A certificate, its key and the trust bundle that goes with it, PEM."""

    cert: bytes
    key: bytes = field(repr=False)
    ca: bytes

    @property
    def pair(self) -> KeyPair:
        return KeyPair(self.cert, self.key)

    def data(self) -> dict[str, bytes]:
        return {TLS_CERT: self.cert, TLS_KEY: self.key, CA_CERT: self.ca}


def read_material(data: Mapping[str, bytes], now: datetime | None = None) -> Material:
    """The Secret's material, checked: all three keys present and parseable, the key belongs
    to the certificate and (with `now`) the certificate is valid now. InvalidMaterial says
    which key is wrong and how."""
    missing = [k for k in KEYS if not data.get(k)]
    if missing:
        raise InvalidMaterial("missing or empty " + ", ".join(missing))
    material = Material(data[TLS_CERT], data[TLS_KEY], data[CA_CERT])
    for key, pem in ((TLS_CERT, material.cert), (CA_CERT, material.ca)):
        try:
            load_bundle(pem)
        except InvalidMaterial as e:
            raise InvalidMaterial(f"{key}: {e}") from None
    try:
        matches = key_matches(material.cert, material.key)
    except (ValueError, TypeError):
        raise InvalidMaterial(f"{TLS_KEY}: not an unencrypted PEM private key") from None
    if not matches:
        raise InvalidMaterial(f"{TLS_KEY} does not belong to the certificate in {TLS_CERT}")
    if now is not None:
        seen = facts(material.cert)
        if now >= seen.not_after:
            raise InvalidMaterial(f"{TLS_CERT} expired at {seen.not_after.isoformat()}")
        if now < seen.not_before:
            raise InvalidMaterial(f"{TLS_CERT} is not valid before {seen.not_before.isoformat()}")
    return material
