"""The pod of one etcd member.

The operator owns member pods directly (no StatefulSet), one per member, named
after the member. A pod is never updated in place. The builder gets everything that
differs between two pods of one cluster as arguments: the member's etcd version (during
a rolling upgrade not `spec.version`), its `--initial-cluster*` flags and whether it has
voted before. It stamps the annotations the operator reads back: the etcd version, the
static initial cluster of a bootstrap member, a hash of the pod spec (recorded only) and
the template hash: a digest of the parts of `spec` that shape the pod, which the operator
compares with the current spec's to roll spec changes out to existing members
(`pod_outdated`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import msgspec
from lightkube.models.core_v1 import (
    Affinity,
    Container,
    ContainerPort,
    EmptyDirVolumeSource,
    PersistentVolumeClaimVolumeSource,
    PodAffinityTerm,
    PodAntiAffinity,
    PodSecurityContext,
    PodSpec,
    ResourceRequirements,
    SeccompProfile,
    SecretVolumeSource,
    Toleration,
    TopologySpreadConstraint,
    Volume,
    VolumeMount,
    WeightedPodAffinityTerm,
)
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.core_v1 import Pod

from etcd_operator import __version__
from etcd_operator.api import EtcdCluster
from etcd_operator.api.snapshot_source import SnapshotLocation
from etcd_operator.naming import (
    CLIENT_PORT,
    DEFAULT_CLUSTER_DOMAIN,
    METRICS_PORT,
    PEER_PORT,
    MemberTLS,
    by_ordinal,
    client_url,
    peer_service_name,
    peer_tls_secret_name,
    peer_url,
    pvc_name,
    server_tls_secret_name,
)
from etcd_operator.planner import ClusterState, InitialCluster
from etcd_operator.resources.labels import (
    BOOTSTRAP_MEMBERS_ANNOTATION,
    ETCD_VERSION_ANNOTATION,
    FORCE_NEW_CLUSTER_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    TRUST_BUNDLE_ANNOTATION,
    member_labels,
    member_selector,
    owner_reference,
)
from etcd_operator.resources.probes import member_probes
from etcd_operator.resources.restore import member_restore
from etcd_operator.resources.security import restricted_container_security
from etcd_operator.tls.rotation import Trust

ETCD_CONTAINER = "etcd"
DATA_VOLUME = "data"
DATA_MOUNT_PATH = "/var/lib/etcd"
# A directory below the mount point: etcd wants to own (and chmod 0700) its data
# dir, and a fresh filesystem's root may hold lost+found.
DATA_DIR = f"{DATA_MOUNT_PATH}/data"
# An unprivileged uid/gid (distroless "nonroot"); fsGroup makes the volume writable.
RUN_AS_ID = 65532
# etcd transfers leadership and syncs its WAL on SIGTERM; give it time to do so.
TERMINATION_GRACE_PERIOD_SECONDS = 60

# Flags that only matter the first time a member starts (etcd ignores them once
# its data dir exists), so they are left out of the spec hash.
_BOOTSTRAP_FLAGS = ("--initial-cluster=", "--initial-cluster-state=", "--initial-cluster-token=")
MEMBER_INIT_CONTAINER = "member-init"
# Which log the volume must hold is a fact of this pod's creation, not of the spec (pods made
# by earlier versions said only --expect-data).
_MEMBER_ID_FLAG = "--member-id="
_CREATION_FACTS = ("--expect-data", _MEMBER_ID_FLAG)
DEFAULT_OPERATOR_IMAGE = f"ghcr.io/etcd-operator/etcd-operator:{__version__}"
# TLS Secrets (cert-manager layout: tls.crt, tls.key, ca.crt), mounted read-only. etcd reads
# its key pair again on every handshake, so a renewed Secret needs no restart.
PEER_TLS_VOLUME = "peer-tls"
PEER_TLS_DIR = "/etc/etcd/tls/peer"
SERVER_TLS_VOLUME = "server-tls"
SERVER_TLS_DIR = "/etc/etcd/tls/server"
# Readable by the group (fsGroup), not by others.
_TLS_FILE_MODE = 0o440


def peer_secret(cluster: EtcdCluster) -> str | None:
    """The Secret member pods mount for peer TLS (None: plaintext peers in the spec)."""
    peer = cluster.spec.tls.peer
    if peer.mode == "Auto":
        return peer_tls_secret_name(cluster.name)
    return peer.secret_name


def server_secret(cluster: EtcdCluster) -> str | None:
    """The Secret member pods mount to serve clients over TLS (None: plaintext clients)."""
    client = cluster.spec.tls.client
    if client.mode == "Auto":
        return server_tls_secret_name(cluster.name)
    return client.secret_name


def _tls_args(tls: MemberTLS) -> list[str]:
    args: list[str] = []
    if tls.client:
        args += [
            f"--cert-file={SERVER_TLS_DIR}/tls.crt",
            f"--key-file={SERVER_TLS_DIR}/tls.key",
            f"--trusted-ca-file={SERVER_TLS_DIR}/ca.crt",
            "--client-cert-auth",
        ]
    if tls.peer:
        args += [
            f"--peer-cert-file={PEER_TLS_DIR}/tls.crt",
            f"--peer-key-file={PEER_TLS_DIR}/tls.key",
            f"--peer-trusted-ca-file={PEER_TLS_DIR}/ca.crt",
            "--peer-client-cert-auth",
        ]
    return args


def _tls_volumes(cluster: EtcdCluster, tls: MemberTLS) -> list[tuple[Volume, VolumeMount]]:
    wanted = []
    if tls.client:
        wanted.append((SERVER_TLS_VOLUME, SERVER_TLS_DIR, server_secret(cluster), "client"))
    if tls.peer:
        wanted.append((PEER_TLS_VOLUME, PEER_TLS_DIR, peer_secret(cluster), "peer"))
    mounts = []
    for volume, path, secret, side in wanted:
        if secret is None:
            raise ValueError(f"{side} TLS asked for, but spec.tls.{side} names no certificate")
        mounts.append(
            (
                Volume(
                    name=volume,
                    secret=SecretVolumeSource(secretName=secret, defaultMode=_TLS_FILE_MODE),
                ),
                VolumeMount(name=volume, mountPath=path, readOnly=True),
            )
        )
    return mounts


def etcd_args(
    cluster: EtcdCluster,
    member: str,
    initial: InitialCluster,
    *,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    tls: MemberTLS | None = None,
) -> list[str]:
    """The etcd command line of `member` (after `etcd`); `tls`: how it serves (default: as
    the spec says)."""
    tls = tls if tls is not None else cluster.spec.tls.member_tls()
    initial_cluster = dict(initial.peers)
    if member not in initial_cluster:
        raise ValueError(f"initial cluster must include the member itself ({member})")
    name, namespace = cluster.name, cluster.namespace
    members = by_ordinal(initial_cluster, name)
    tuning = cluster.spec.etcd
    # One listener serves both schemes when plaintext clients are still allowed.
    listen_client = [f"{tls.client_scheme}://0.0.0.0:{CLIENT_PORT}"]
    if tls.client and tls.client_plaintext:
        listen_client.append(f"http://0.0.0.0:{CLIENT_PORT}")
    args = [
        f"--name={member}",
        f"--data-dir={DATA_DIR}",
        f"--listen-peer-urls={tls.peer_scheme}://0.0.0.0:{PEER_PORT}",
        f"--listen-client-urls={','.join(listen_client)}",
        f"--listen-metrics-urls=http://0.0.0.0:{METRICS_PORT}",
        "--advertise-client-urls=" + client_url(member, name, namespace, cluster_domain, tls=tls),
        "--initial-advertise-peer-urls="
        + peer_url(member, name, namespace, cluster_domain, tls=tls),
        "--initial-cluster=" + ",".join(f"{m}={initial_cluster[m]}" for m in members),
        f"--initial-cluster-state={initial.state.value}",
        f"--initial-cluster-token={initial.token}",
        f"--heartbeat-interval={tuning.heartbeat_interval_ms}",
        f"--election-timeout={tuning.election_timeout_ms}",
        f"--auto-compaction-mode={tuning.auto_compaction_mode}",
        f"--auto-compaction-retention={tuning.auto_compaction_retention}",
    ]
    if tuning.snapshot_count is not None:
        args.append(f"--snapshot-count={tuning.snapshot_count}")
    if tuning.quota_backend_bytes is not None:
        args.append(f"--quota-backend-bytes={tuning.quota_backend_bytes}")
    # The certificates are the spec's; which schemes listen is `tls`'s: a member switching to
    # TLS first holds the peer certificate (to reach members that serve https) while its own
    # peer listener still serves its registered http URL.
    material = cluster.spec.tls.member_tls()
    for side, serves, holds in (
        ("peer", tls.peer, material.peer),
        ("client", tls.client, material.client),
    ):
        if serves and not holds:
            raise ValueError(f"{side} TLS asked for, but spec.tls.{side} names no certificate")
    return args + _tls_args(material)


def served_tls(pod: Pod) -> tuple[MemberTLS, bool]:
    """What a member pod serves, from its etcd flags as the API server stores them: its
    schemes, and whether it holds the peer certificate and trusts the peer CA."""
    containers = pod.spec.containers if pod.spec else []
    etcd = next((c for c in containers if c.name == ETCD_CONTAINER), None)
    flags = dict(a.split("=", 1) for a in (etcd.args or []) if "=" in a) if etcd else {}
    clients = flags.get("--listen-client-urls", "").split(",")
    client = any(u.startswith("https://") for u in clients)
    served = MemberTLS(
        peer=flags.get("--listen-peer-urls", "").startswith("https://"),
        client=client,
        client_plaintext=client and any(u.startswith("http://") for u in clients),
    )
    return served, "--peer-trusted-ca-file" in flags


def _from_dict(model: Any, data: Mapping[str, Any], field: str) -> Any:
    try:
        return model.from_dict(dict(data))
    except msgspec.ValidationError as error:
        raise ValueError(f"spec.podTemplate.{field}: {error}") from None


def _affinity(cluster: EtcdCluster) -> Affinity:
    """The user's affinity, or: prefer to put each member on a different node."""
    if cluster.spec.pod_template.affinity is not None:
        affinity: Affinity = _from_dict(Affinity, cluster.spec.pod_template.affinity, "affinity")
        return affinity
    return Affinity(
        podAntiAffinity=PodAntiAffinity(
            preferredDuringSchedulingIgnoredDuringExecution=[
                WeightedPodAffinityTerm(
                    weight=100,
                    podAffinityTerm=PodAffinityTerm(
                        labelSelector=LabelSelector(matchLabels=member_selector(cluster)),
                        topologyKey="kubernetes.io/hostname",
                    ),
                )
            ]
        )
    )


def _resources(cluster: EtcdCluster) -> ResourceRequirements | None:
    resources = cluster.spec.pod_template.resources
    if resources is None:
        return None
    return ResourceRequirements(
        requests={k: str(v) for k, v in resources.requests.items()} if resources.requests else None,
        limits={k: str(v) for k, v in resources.limits.items()} if resources.limits else None,
    )


def _data_volume(cluster: EtcdCluster, claim: str) -> Volume:
    storage = cluster.spec.storage
    if storage.empty_dir:
        return Volume(name=DATA_VOLUME, emptyDir=EmptyDirVolumeSource(sizeLimit=storage.size))
    return Volume(
        name=DATA_VOLUME,
        persistentVolumeClaim=PersistentVolumeClaimVolumeSource(claimName=claim),
    )


def _container(
    cluster: EtcdCluster, version: str, args: list[str], tls_mounts: list[VolumeMount]
) -> Container:
    probes = member_probes(version)
    return Container(
        name=ETCD_CONTAINER,
        image=cluster.spec.image_for(version),
        imagePullPolicy="IfNotPresent",
        command=["etcd"],
        args=args,
        ports=[
            ContainerPort(name="client", containerPort=CLIENT_PORT, protocol="TCP"),
            ContainerPort(name="peer", containerPort=PEER_PORT, protocol="TCP"),
            ContainerPort(name="metrics", containerPort=METRICS_PORT, protocol="TCP"),
        ],
        volumeMounts=[VolumeMount(name=DATA_VOLUME, mountPath=DATA_MOUNT_PATH), *tls_mounts],
        resources=_resources(cluster),
        startupProbe=probes.startup,
        livenessProbe=probes.liveness,
        readinessProbe=probes.readiness,
        securityContext=restricted_container_security(),
        terminationMessagePolicy="FallbackToLogsOnError",
    )


def _member_init(cluster: EtcdCluster, member: str, image: str, member_id: int | None) -> Container:
    """The data-directory check (etcd_operator.memberinit) in the operator's own image."""
    args = [
        "member-init",
        f"--data-dir={DATA_DIR}",
        f"--cluster-uid={cluster.metadata.uid}",
        f"--member={member}",
    ]
    if member_id is not None:
        args.append(f"{_MEMBER_ID_FLAG}{member_id:x}")
    return Container(
        name=MEMBER_INIT_CONTAINER,
        image=image,
        imagePullPolicy="IfNotPresent",
        command=["etcd-operator"],
        args=args,
        volumeMounts=[VolumeMount(name=DATA_VOLUME, mountPath=DATA_MOUNT_PATH)],
        resources=ResourceRequirements(
            requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "128Mi"}
        ),
        securityContext=restricted_container_security(),
        terminationMessagePolicy="FallbackToLogsOnError",
    )


def _pod_spec(
    cluster: EtcdCluster,
    member: str,
    version: str,
    args: list[str],
    init: list[Container],
    *,
    claim: str,
    extra_volumes: list[Volume],
) -> PodSpec:
    template = cluster.spec.pod_template
    tls_volumes = _tls_volumes(cluster, cluster.spec.tls.member_tls())
    return PodSpec(
        hostname=member,
        subdomain=peer_service_name(cluster.name),
        initContainers=init,
        containers=[_container(cluster, version, args, [m for _, m in tls_volumes])],
        volumes=[_data_volume(cluster, claim), *(v for v, _ in tls_volumes), *extra_volumes],
        restartPolicy="Always",
        terminationGracePeriodSeconds=TERMINATION_GRACE_PERIOD_SECONDS,
        enableServiceLinks=False,
        automountServiceAccountToken=False,  # etcd never talks to the Kubernetes API
        securityContext=PodSecurityContext(
            runAsNonRoot=True,
            runAsUser=RUN_AS_ID,
            runAsGroup=RUN_AS_ID,
            fsGroup=RUN_AS_ID,
            fsGroupChangePolicy="OnRootMismatch",
            seccompProfile=SeccompProfile(type="RuntimeDefault"),
        ),
        affinity=_affinity(cluster),
        tolerations=(
            [_from_dict(Toleration, t, "tolerations") for t in template.tolerations]
            if template.tolerations
            else None
        ),
        nodeSelector=dict(template.node_selector) if template.node_selector else None,
        topologySpreadConstraints=(
            [
                _from_dict(TopologySpreadConstraint, c, "topologySpreadConstraints")
                for c in template.topology_spread_constraints
            ]
            if template.topology_spread_constraints
            else None
        ),
        priorityClassName=template.priority_class_name,
    )


def _lasting_args(args: list[str]) -> list[str]:
    """The arguments that matter on every start, not only the first (bootstrap flags out)."""
    return [arg for arg in args if not arg.startswith(_BOOTSTRAP_FLAGS)]


def pod_spec_hash(pod: Pod) -> str:
    """A digest of what the pod runs, ignoring bootstrap-only flags and metadata.

    Two pods built for the same member from the same spec hash alike whether the
    member was bootstrapped or joined later, so a changed hash would mean the spec
    changed something only a new pod picks up. Labels and annotations are not
    included. Recorded on every pod; nothing compares it yet.
    """
    if pod.spec is None:
        raise ValueError("pod has no spec")
    spec = pod.spec.to_dict()
    for container in spec.get("containers", []):
        container["args"] = _lasting_args(container.get("args", []))
    for container in spec.get("initContainers", []):
        args = container.get("args", [])
        container["args"] = [a for a in args if not a.startswith(_CREATION_FACTS)]
    for volume in spec.get("volumes", []):
        volume.get("persistentVolumeClaim", {}).pop("claimName", None)
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _tls_shaping(cluster: EtcdCluster) -> dict[str, Any] | None:
    """What of `spec.tls` shapes a member pod: modes, mounted Secrets, plaintext clients."""
    tls = cluster.spec.tls
    shaping = {
        "peer": tls.peer.model_dump(mode="json", exclude_defaults=True),
        "client": tls.client.model_dump(
            mode="json", exclude_defaults=True, exclude={"operator_secret_name"}
        ),
    }
    return shaping if any(shaping.values()) else None


def template_hash(cluster: EtcdCluster) -> str:
    """A digest of what the user's spec puts into every member pod: `image`, `podTemplate`,
    `etcd` (tuning), the pod-shaping part of `tls` and, for emptyDir storage, `storage.size`
    (the emptyDir's sizeLimit).

    Not `version` (the upgrade rules own version changes) and nothing the operator adds on its
    own (probes, its own image in the init container, security settings): a new operator
    release therefore never restarts members by itself. Fields left at their defaults are
    left out, so that a release adding a field with a default keeps every digest.
    """
    spec = cluster.spec
    shaping = {
        "image": spec.image,
        "podTemplate": spec.pod_template.model_dump(mode="json", exclude_defaults=True),
        "etcd": spec.etcd.model_dump(mode="json", exclude_defaults=True),
        "emptyDirSize": spec.storage.size if spec.storage.empty_dir else None,
    }
    tls = _tls_shaping(cluster)
    if tls is not None:  # left out when plaintext: digests of earlier releases stay valid
        shaping["tls"] = tls
    canonical = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def pod_outdated(
    cluster: EtcdCluster, pod: Pod, *, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> bool:
    """Whether `pod` was built from another spec than `cluster.spec` (its version aside).

    A pod records the template hash it was built with. A pod that records none was created by
    an operator release that did not: it counts as outdated only when its etcd command line
    (bootstrap flags aside) or its image differs from what this spec gives a member at the
    pod's version, both of which the API server stores exactly as written. So upgrading the
    operator restarts no member, while a member running another quota or other timeouts than
    the spec is rolled; a `podTemplate` change made before the upgrade reaches such a pod only
    when it is next recreated.
    """
    meta = pod.metadata
    annotations = (meta.annotations if meta else None) or {}
    recorded = annotations.get(TEMPLATE_HASH_ANNOTATION)
    if recorded is not None:
        return bool(recorded != template_hash(cluster))
    version = annotations.get(ETCD_VERSION_ANNOTATION)
    containers = pod.spec.containers if pod.spec else []
    etcd = next((c for c in containers if c.name == ETCD_CONTAINER), None)
    if meta is None or meta.name is None or version is None or etcd is None:
        return False
    try:
        image = cluster.spec.image_for(version)
    except ValueError:
        return False  # not a version this operator would start: the upgrade rules decide
    tls = cluster.spec.tls.member_tls()
    own = peer_url(meta.name, cluster.name, cluster.namespace, cluster_domain, tls=tls)
    initial = InitialCluster(ClusterState.EXISTING, ((meta.name, own),), "")
    want = etcd_args(cluster, meta.name, initial, cluster_domain=cluster_domain)
    return etcd.image != image or _lasting_args(etcd.args or []) != _lasting_args(want)


def _mounts_tls(pod: Pod) -> bool:
    volumes = (pod.spec.volumes if pod.spec else None) or []
    return any(v.name in (PEER_TLS_VOLUME, SERVER_TLS_VOLUME) for v in volumes)


def trust_outdated(pod: Pod, trust: Trust | None) -> bool:
    """Whether `pod` started with another trust bundle than `trust` (what its TLS Secrets hold
    now; None: unknown or no TLS). A TLS pod that records none was made by an earlier release:
    it counts as outdated only while a rotation is under way (several CAs), so upgrading the
    operator restarts nothing, and a rotation never trusts what it cannot know."""
    if trust is None or not _mounts_tls(pod):
        return False
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    recorded = annotations.get(TRUST_BUNDLE_ANNOTATION)
    if recorded is None:
        return trust.authorities > 1
    return bool(recorded != trust.digest)


def member_pod(
    cluster: EtcdCluster,
    member: str,
    version: str,
    initial: InitialCluster,
    *,
    member_id: int | None = None,
    claim: str | None = None,
    operator_image: str = DEFAULT_OPERATOR_IMAGE,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    tls: MemberTLS | None = None,
    restore: SnapshotLocation | None = None,
    trust: Trust | None = None,
    force_new_cluster: bool = False,
) -> Pod:
    """The pod of `member`, running etcd `version`.

    `initial` says how the member first starts: all bootstrap members with state `new`
    and the same initial cluster (recorded on the pod, so that an interrupted bootstrap
    resumes with the same member set); a member added later with state `existing` and
    the cluster as it will be once the member is added (existing members plus itself).
    `member_id`: the member has run before, so the volume must hold its log (member-init
    refuses to start etcd otherwise). `claim`: the claim it runs on (default `<member>`).
    `tls`: the schemes the member serves peers and clients on (default: as the spec says);
    the certificates it mounts and presents are the spec's. `trust`: what those Secrets'
    ca.crt hold now (recorded on a pod that mounts them, see `trust_outdated`). `restore`: an
    initial member of a cluster bootstrapped from this snapshot (only with state `new`): init
    steps after member-init restore it as this member into an empty data directory.
    `force_new_cluster`: the survivor of a lost quorum starts once as the only member, with
    its data (`--force-new-cluster`; recorded in an annotation).
    """
    tls = tls if tls is not None else cluster.spec.tls.member_tls()
    args = etcd_args(cluster, member, initial, cluster_domain=cluster_domain, tls=tls)
    if force_new_cluster:
        if member_id is None:
            raise ValueError("only a member with data can be forced into a new cluster")
        args.append("--force-new-cluster")
    template = cluster.spec.pod_template
    init = [_member_init(cluster, member, operator_image, member_id)]
    extra_volumes: list[Volume] = []
    if restore is not None:
        if initial.state is not ClusterState.NEW or member_id is not None:
            raise ValueError("only an initial member that never started restores a snapshot")
        steps, extra_volumes = member_restore(
            restore,
            args,
            data_dir=DATA_DIR,
            data_mount=VolumeMount(name=DATA_VOLUME, mountPath=DATA_MOUNT_PATH),
            etcd_image=cluster.spec.image_for(version),
            operator_image=operator_image,
        )
        init += steps
    pod = Pod(
        metadata=ObjectMeta(
            name=member,
            namespace=cluster.namespace,
            labels={**(template.labels or {}), **member_labels(cluster, member)},
            ownerReferences=[owner_reference(cluster)],
        ),
        spec=_pod_spec(
            cluster,
            member,
            version,
            args,
            init,
            claim=claim or pvc_name(member),
            extra_volumes=extra_volumes,
        ),
    )
    assert pod.metadata is not None
    pod.metadata.annotations = {
        **(template.annotations or {}),
        SPEC_HASH_ANNOTATION: pod_spec_hash(pod),
        TEMPLATE_HASH_ANNOTATION: template_hash(cluster),
        ETCD_VERSION_ANNOTATION: version,
    }
    if trust is not None and _mounts_tls(pod):
        pod.metadata.annotations[TRUST_BUNDLE_ANNOTATION] = trust.digest
    if force_new_cluster:
        pod.metadata.annotations[FORCE_NEW_CLUSTER_ANNOTATION] = "true"
    if initial.state is ClusterState.NEW:
        bootstrap = ",".join(name for name, _ in initial.peers)
        pod.metadata.annotations[BOOTSTRAP_MEMBERS_ANNOTATION] = bootstrap
    return pod
