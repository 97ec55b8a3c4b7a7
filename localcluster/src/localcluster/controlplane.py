"""The localcluster control plane: etcd, kube-apiserver, controller manager, scheduler.

Like controller-runtime's envtest, but the processes are detached (own session,
pid files in ``StateDir.pids``, logs in ``StateDir.logs``) so they outlive the
``python -m localcluster up`` that started them. Certificates are generated
once per state directory (``StateDir.pki``) and reused on restart.

PersistentVolumes: the controller manager's hostpath provisioner is enabled and
backs the default ``standard`` StorageClass. Its directory is hard-coded
upstream to ``/tmp/hostpath_pv/<uuid>`` (no flag changes it); the node agent
mounts the PV's ``spec.hostPath.path``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccount
from lightkube.resources.storage_v1 import StorageClass

from localcluster import config
from localcluster.build import Binaries
from localcluster.config import StateDir

APISERVER_URL = f"https://127.0.0.1:{config.APISERVER_PORT}"
ETCD_URL = f"http://127.0.0.1:{config.CONTROL_PLANE_ETCD_CLIENT_PORT}"
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
SERVICE_ACCOUNT_ISSUER = f"https://kubernetes.default.svc.{config.CLUSTER_DOMAIN}"
STORAGE_CLASS = "standard"
HOSTPATH_PV_DIR = Path("/tmp/hostpath_pv")  # fixed in kube-controller-manager's provisioner

# Stop order: clients first, etcd last.
COMPONENTS = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
_PID_PREFIX = "controlplane-"
START_TIMEOUT = 180.0
STOP_GRACE = 10.0

# ---------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path

    def exists(self) -> bool:
        return self.cert.exists() and self.key.exists()


_VALIDITY = datetime.timedelta(days=3650)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def _subject(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ensure_ca(pki: Path) -> CertPair:
    pair = CertPair(pki / "ca.crt", pki / "ca.key")
    if pair.exists():
        return pair
    pki.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _subject("localcluster-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(pair.key, _key_pem(key))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def issue_cert(
    pki: Path,
    name: str,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> CertPair:
    """``<pki>/<name>.crt`` and ``.key`` signed by the cluster CA (kept if present)."""
    pair = CertPair(pki / f"{name}.crt", pki / f"{name}.key")
    if pair.exists():
        return pair
    ca = _ensure_ca(pki)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_private(pair.key, _key_pem(key))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def apiserver_sans() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IPs) by which the host and pods reach the apiserver."""
    service_ip = str(next(ipaddress.ip_network(config.SERVICE_CIDR).hosts()))
    dns = (
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
    )
    return dns, ("127.0.0.1", config.GATEWAY_IP, service_ip)


def _ensure_service_account_key(pki: Path) -> tuple[Path, Path]:
    """The RSA pair that signs service-account tokens: (private, public)."""
    private, public = pki / "sa.key", pki / "sa.pub"
    if private.exists() and public.exists():
        return private, public
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(private, _key_pem(key))
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def write_kubeconfig(path: Path, ca: Path, client: CertPair, user: str) -> Path:
    """A self-contained kubeconfig (certificates embedded) for APISERVER_URL."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "localcluster",
                "cluster": {"server": APISERVER_URL, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [
            {"name": "localcluster", "context": {"cluster": "localcluster", "user": user}}
        ],
        "current-context": "localcluster",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def ensure_pki(state: StateDir) -> None:
    """CA, serving and client certificates, SA keys and kubeconfigs (idempotent)."""
    pki = state.pki
    ca = _ensure_ca(pki)
    dns, ips = apiserver_sans()
    issue_cert(pki, "apiserver", "kube-apiserver", dns_names=dns, ips=ips, server=True)
    _ensure_service_account_key(pki)
    users = {
        "admin": ("admin", ("system:masters",), state.kubeconfig),
        "controller-manager": ("system:kube-controller-manager", (), _kubeconfig(state, "kcm")),
        "scheduler": ("system:kube-scheduler", (), _kubeconfig(state, "scheduler")),
    }
    for name, (cn, orgs, kubeconfig) in users.items():
        pair = issue_cert(pki, name, cn, organizations=orgs, client=True)
        if not kubeconfig.exists():
            write_kubeconfig(kubeconfig, ca.cert, pair, cn)


def node_kubeconfig(state: StateDir, node: str) -> Path:
    """Kubeconfig for a node agent as ``system:node:<node>`` (Node authorizer + NodeRestriction)."""
    path = _kubeconfig(state, f"node-{node}")
    if not path.exists():
        ca = _ensure_ca(state.pki)
        cn = f"system:node:{node}"
        pair = issue_cert(
            state.pki, f"node-{node}", cn, organizations=("system:nodes",), client=True
        )
        write_kubeconfig(path, ca.cert, pair, cn)
    return path


def _kubeconfig(state: StateDir, name: str) -> Path:
    return state.pki / f"{name}.kubeconfig"


# ---------------------------------------------------------------------------
# Processes

# Components started by this Python process: kept so they can be reaped (only
# them: waitpid on other pids could steal another library's child's status).
_children: list[subprocess.Popen[bytes]] = []


def _pid_file(state: StateDir, component: str) -> Path:
    return state.pids / f"{_PID_PREFIX}{component}.pid"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _proc_argv(pid: int) -> list[str] | None:
    """argv of a live (non-zombie) process, None if it is gone."""
    # Reap components this process started and that have exited.
    _children[:] = [child for child in _children if child.poll() is None]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg] or None


def _is_component(argv: list[str] | None, component: str) -> bool:
    # Guards against a recycled pid: argv[0] is the binary (or symlink) name.
    return argv is not None and Path(argv[0]).name == component


def component_pid(state: StateDir, component: str) -> int | None:
    """Pid of a running control-plane component, None if it is not running."""
    pid = _read_pid(_pid_file(state, component))
    if pid is not None and _is_component(_proc_argv(pid), component):
        return pid
    return None


def _stray_pids(state: StateDir) -> list[int]:
    """Component processes of this state dir without (valid) pid files."""
    root = f"{state.root}/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _proc_argv(int(entry.name))
        if argv and Path(argv[0]).name in COMPONENTS and any(root in arg for arg in argv):
            found.append(int(entry.name))
    return found


def _spawn(state: StateDir, component: str, argv: list[str]) -> None:
    state.logs.mkdir(parents=True, exist_ok=True)
    state.pids.mkdir(parents=True, exist_ok=True)
    with (state.logs / f"{component}.log").open("ab") as log:
        log.write(f"\n=== {datetime.datetime.now(datetime.UTC).isoformat()} start\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=state.root,
            start_new_session=True,  # own process group; outlives the caller
        )
    _pid_file(state, component).write_text(f"{proc.pid}\n")
    _children.append(proc)


def _log_tail(state: StateDir, component: str, lines: int = 25) -> str:
    try:
        text = (state.logs / f"{component}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _check_alive(state: StateDir, component: str) -> None:
    pid = _read_pid(_pid_file(state, component))
    # For a process this one spawned, the exit status is the truth; /proc was seen to
    # misreport a just-started component as gone on a loaded machine.
    child = next((c for c in _children if c.pid == pid), None)
    if child is not None:
        if child.poll() is None:
            return
    elif component_pid(state, component) is not None:
        return
    raise RuntimeError(
        f"{component} exited during start; last lines of {state.logs}/{component}.log:\n"
        + _log_tail(state, component)
    )


def _ssl_context(state: StateDir, client: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(state.pki / "ca.crt"))
    if client:
        ctx.load_cert_chain(str(state.pki / "admin.crt"), str(state.pki / "admin.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")


def api_ready(state: StateDir, timeout: float = 3.0) -> bool:
    """Whether the apiserver answers /readyz with ok (as the admin)."""
    try:
        return _get(f"{APISERVER_URL}/readyz", _ssl_context(state), timeout)[0] == 200
    except (OSError, ssl.SSLError, ValueError):
        return False


def _wait(
    state: StateDir, component: str, what: str, probe: Callable[[], bool], deadline: float
) -> None:
    while True:
        try:
            if probe():
                return
        except (OSError, ssl.SSLError, ValueError):
            pass
        _check_alive(state, component)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{component}: {what} not ready in time; last lines of its log:\n"
                + _log_tail(state, component)
            )
        time.sleep(0.2)


def _etcd_argv(state: StateDir, binaries: Binaries) -> list[str]:
    peer = f"http://127.0.0.1:{config.CONTROL_PLANE_ETCD_PEER_PORT}"
    return [
        str(binaries.control_plane_etcd.etcd),
        "--name=controlplane",
        f"--data-dir={state.root / 'etcd'}",
        f"--listen-client-urls={ETCD_URL}",
        f"--advertise-client-urls={ETCD_URL}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=controlplane={peer}",
        # A throw-away test store: skipping fsync makes every API write much faster.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def _apiserver_argv(state: StateDir, binaries: Binaries) -> list[str]:
    pki = state.pki
    return [
        str(binaries.kube_apiserver),
        f"--etcd-servers={ETCD_URL}",
        "--bind-address=0.0.0.0",
        f"--secure-port={config.APISERVER_PORT}",
        f"--advertise-address={config.GATEWAY_IP}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--cert-dir={pki / 'apiserver-serving'}",
        "--authorization-mode=Node,RBAC",
        # On top of the default set (which includes PodSecurity, ServiceAccount,
        # DefaultStorageClass, StorageObjectInUseProtection, ...).
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--service-cluster-ip-range={config.SERVICE_CIDR}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--profiling=false",
    ]


def _controller_manager_argv(state: StateDir, binaries: Binaries) -> list[str]:
    pki = state.pki
    kubeconfig = _kubeconfig(state, "kcm")
    return [
        str(binaries.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={CONTROLLER_MANAGER_PORT}",
        f"--cert-dir={pki / 'kcm-serving'}",
        # Every default controller (GC, namespace, endpoints, PV binder, node
        # lifecycle, disruption, workloads, ...): tests should see a real cluster.
        "--controllers=*",
        "--enable-hostpath-provisioner=true",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={config.SERVICE_CIDR}",
        "--cluster-name=localcluster",
        "--profiling=false",
    ]


def _scheduler_argv(state: StateDir, binaries: Binaries) -> list[str]:
    kubeconfig = _kubeconfig(state, "scheduler")
    return [
        str(binaries.kube_scheduler),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={SCHEDULER_PORT}",
        f"--cert-dir={state.pki / 'scheduler-serving'}",
        "--profiling=false",
    ]


def _insecure_healthz(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed serving cert of a local component
    return _get(f"https://127.0.0.1:{port}/healthz", ctx)[0] == 200


@contextlib.contextmanager
def _locked(state: StateDir) -> Iterator[None]:
    """One start/stop at a time per state directory (e.g. parallel test runs)."""
    state.root.mkdir(parents=True, exist_ok=True)
    with (state.root / ".controlplane.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def is_running(state: StateDir) -> bool:
    """Whether every control-plane process is alive (does not probe the API)."""
    return all(component_pid(state, c) is not None for c in COMPONENTS)


def start(state: StateDir, binaries: Binaries) -> None:
    """Start the control plane (no-op if it is running) and wait until it is usable.

    Usable means: apiserver /readyz, controller manager and scheduler /healthz,
    the default StorageClass, and the ``default`` ServiceAccount in ``default``.
    """
    with _locked(state):
        _start(state, binaries)


def _start_etcd(state: StateDir, binaries: Binaries, deadline: float, attempts: int = 3) -> None:
    """Start etcd, retrying when it dies at once: right after a stop its ports or data-dir
    lock can still be held for a moment (seen once when a test restarted the cluster)."""
    for attempt in range(1, attempts + 1):
        _spawn(state, "etcd", _etcd_argv(state, binaries))
        try:
            _wait(
                state,
                "etcd",
                "/health",
                lambda: json.loads(_get(f"{ETCD_URL}/health")[1]).get("health") == "true",
                deadline,
            )
            return
        except RuntimeError:
            if attempt == attempts:
                raise
            time.sleep(1.0)


def _start(state: StateDir, binaries: Binaries) -> None:
    if is_running(state) and api_ready(state):
        _post_start(state, time.monotonic() + START_TIMEOUT)
        return
    _stop(state)  # half up: start every component afresh
    for path in (state.root, state.logs, state.pids, state.volumes):
        path.mkdir(parents=True, exist_ok=True)
    ensure_pki(state)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        _start_etcd(state, binaries, deadline)
        _spawn(state, "kube-apiserver", _apiserver_argv(state, binaries))
        _wait(state, "kube-apiserver", "/readyz", lambda: api_ready(state), deadline)
        # Only now: both exit if RBAC is not bootstrapped yet when they first
        # read the extension-apiserver-authentication ConfigMap.
        _spawn(state, "kube-controller-manager", _controller_manager_argv(state, binaries))
        _spawn(state, "kube-scheduler", _scheduler_argv(state, binaries))
        _wait(
            state,
            "kube-controller-manager",
            "/healthz",
            lambda: _insecure_healthz(CONTROLLER_MANAGER_PORT),
            deadline,
        )
        _wait(
            state, "kube-scheduler", "/healthz", lambda: _insecure_healthz(SCHEDULER_PORT), deadline
        )
        _post_start(state, deadline)
    except BaseException:
        _stop(state)
        raise


def _post_start(state: StateDir, deadline: float) -> None:
    """Objects every test cluster has: the default StorageClass, the default SA."""
    client = Client(KubeConfig.from_file(state.kubeconfig), field_manager="localcluster")
    try:
        storage_class = StorageClass(
            metadata=ObjectMeta(
                name=STORAGE_CLASS,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="kubernetes.io/host-path",
            reclaimPolicy="Delete",
            volumeBindingMode="Immediate",
            allowVolumeExpansion=True,
        )
        try:
            client.create(storage_class)
        except ApiError as err:
            if err.status.code != 409:
                raise
        while True:
            try:
                client.get(ServiceAccount, "default", namespace="default")
                return
            except ApiError as err:
                if err.status.code != 404:
                    raise
            _check_alive(state, "kube-controller-manager")
            if time.monotonic() > deadline:
                raise TimeoutError("the default ServiceAccount was not created in time")
            time.sleep(0.2)
    finally:
        client.close()


def _signal(pid: int, sig: int) -> None:
    """Signal the process group we started it in, or the process if it leads none."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _terminate(pids: list[int], grace: float) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_proc_argv(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _proc_argv(pid) is not None:
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_proc_argv(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(state: StateDir) -> None:
    """Stop every control-plane process: SIGTERM, then SIGKILL (idempotent).

    One component at a time, clients before servers: an apiserver whose etcd
    is already gone (or an etcd with clients attached) takes many seconds to
    shut down gracefully, in order it takes about one.
    """
    if not state.root.is_dir():
        return
    with _locked(state):
        _stop(state)


def _stop(state: StateDir) -> None:
    for component in COMPONENTS:
        pid = component_pid(state, component)
        if pid is not None:
            _terminate([pid], STOP_GRACE)
        _pid_file(state, component).unlink(missing_ok=True)
    if state.root.is_dir():
        _terminate(_stray_pids(state), STOP_GRACE)
