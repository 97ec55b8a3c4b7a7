"""Issue and read X.509 certificates with `cryptography`: a CA, leaf certificates signed by
it, and trust bundles (several CA certificates in one PEM, as a CA rotation needs).

ECDSA P-256 keys, SHA-256 signatures, PKCS#8 keys without a passphrase (etcd reads them
from a file). Nothing here logs or formats key material.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
# Certificates start a little in the past: a member whose clock is slightly behind the
# operator's must not see a certificate that is "not yet valid".
BACKDATE = timedelta(minutes=1)


class InvalidMaterial(ValueError):
    """PEM data that is not what it should be; the message says what, never the content."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, PEM."""

    cert: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class LeafProfile:
    """What a leaf certificate says: its subject, names and usages."""

    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False


@dataclass(frozen=True)
class CertFacts:
    """What the operator compares of an existing certificate."""

    serial: int
    common_name: str
    dns_names: frozenset[str]
    ip_addresses: frozenset[str]
    server: bool
    client: bool
    not_before: datetime
    not_after: datetime

    def matches(self, profile: LeafProfile) -> bool:
        return (
            self.common_name == profile.common_name
            and self.dns_names == frozenset(profile.dns_names)
            and self.ip_addresses == frozenset(profile.ip_addresses)
            and self.server == profile.server
            and self.client == profile.client
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def new_ca(common_name: str, now: datetime, validity: timedelta = CA_VALIDITY) -> KeyPair:
    """A self-signed CA that signs leaf certificates only (path length 0)."""
    key = _new_key()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def issue(ca: KeyPair, profile: LeafProfile, now: datetime, duration: timedelta) -> KeyPair:
    """A new key and a certificate for it signed by `ca`, valid for `duration` from `now`
    (never beyond the CA's own end)."""
    ca_cert = load_certificate(ca.cert)
    ca_key = load_private_key(ca.key)
    key = _new_key()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if profile.server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if profile.client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(profile.common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + duration, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in profile.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in profile.ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return KeyPair(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def load_certificate(pem: bytes) -> x509.Certificate:
    """The first certificate of `pem`."""
    return load_bundle(pem)[0]


def load_bundle(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; InvalidMaterial when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InvalidMaterial("not a PEM certificate bundle") from None
    if not certs:
        raise InvalidMaterial("no certificate in the bundle")
    return certs


def bundle(certs: Sequence[bytes]) -> bytes:
    """Several PEM certificates (or bundles) as one bundle, each once, in order."""
    seen: list[bytes] = []
    for pem in certs:
        for cert in load_bundle(pem):
            encoded = _cert_pem(cert)
            if encoded not in seen:
                seen.append(encoded)
    return b"".join(seen)


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """A CA key the operator made (ECDSA)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidMaterial("not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidMaterial("not an ECDSA private key")
    return key


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the private key belongs to the (first) certificate."""
    cert = load_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        cert.public_key().public_bytes(serialization.Encoding.DER, public)
        == key.public_key().public_bytes(serialization.Encoding.DER, public)
    )


def signed_by(cert_pem: bytes, trusted: bytes) -> bool:
    """Whether the (first) certificate of `cert_pem` was issued directly by a CA in the
    `trusted` bundle (name and signature)."""
    cert = load_certificate(cert_pem)
    for ca in load_bundle(trusted):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def is_ca(cert_pem: bytes) -> bool:
    try:
        constraints = load_certificate(cert_pem).extensions.get_extension_for_class(
            x509.BasicConstraints
        )
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.value.ca)


def facts(cert_pem: bytes) -> CertFacts:
    """What the (first) certificate of `cert_pem` says."""
    cert = load_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = frozenset(sans.get_values_for_type(x509.DNSName))
        ips = frozenset(str(a) for a in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = frozenset(), frozenset()
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = set()
    return CertFacts(
        serial=cert.serial_number,
        common_name=str(cns[0].value) if cns else "",
        dns_names=dns,
        ip_addresses=ips,
        server=ExtendedKeyUsageOID.SERVER_AUTH in eku,
        client=ExtendedKeyUsageOID.CLIENT_AUTH in eku,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def pem_from_der(der: bytes) -> bytes:
    """A DER certificate (as a TLS handshake gives it) as PEM."""
    try:
        return _cert_pem(x509.load_der_x509_certificate(der))
    except ValueError:
        raise InvalidMaterial("not a DER certificate") from None
