"""How the operator reaches one cluster's etcd: URL schemes and client TLS material, from the
spec and the Secret of the operator's own client certificate. The one place that turns a
cluster's security settings into the etcd client's configuration (auth joins here too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etcd_operator.api import EtcdCluster
from etcd_operator.etcd import Credentials, EtcdConfig, TLSConfig
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.naming import MemberTLS, operator_tls_secret_name
from etcd_operator.resources.secret import decode_data
from etcd_operator.tls.material import read_material
from etcd_operator.tls.pki import InvalidMaterial


@dataclass(frozen=True)
class EtcdAccess:
    """What the operator connects with. `problem`: why it cannot connect (then `tls` is
    None although members serve TLS, and no client is made)."""

    member_tls: MemberTLS
    tls: TLSConfig | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def config(
        self, endpoints: Sequence[str], credentials: Credentials | None = None
    ) -> EtcdConfig:
        # Root's credentials whenever the operator has them, with or without a client
        # certificate: in etcd a token wins over the certificate's name, so one path works
        # with client TLS on or off. Short timeouts: a dead member costs one dial timeout,
        # never a hung round.
        return EtcdConfig(
            endpoints=tuple(endpoints),
            tls=self.tls,
            credentials=credentials,
            dial_timeout=1.5,
            request_timeout=4.0,
        )


def operator_secret(cluster: EtcdCluster) -> str | None:
    """The Secret with the operator's client certificate (None: plaintext clients)."""
    client = cluster.spec.tls.client
    if client.mode == "Auto":
        return operator_tls_secret_name(cluster.name)
    return client.operator_secret_name


async def etcd_access(secrets: SecretReader, cluster: EtcdCluster) -> EtcdAccess:
    member_tls = cluster.spec.tls.member_tls()
    name = operator_secret(cluster)
    if not member_tls.client or name is None:
        return EtcdAccess(member_tls)
    secret = await secrets.get(name)
    if secret is None:
        return EtcdAccess(member_tls, problem=f"Secret {name} does not exist")
    try:
        material = read_material(decode_data(secret))
    except InvalidMaterial as e:
        return EtcdAccess(member_tls, problem=f"Secret {name}: {e}")
    # Verification against the Secret's CA bundle, always; the server name is the member's
    # DNS name in the URL.
    tls = TLSConfig(ca_cert=material.ca, client_cert=material.cert, client_key=material.key)
    return EtcdAccess(member_tls, tls)
