"""Command line: `etcd-operator run | manifests | version`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from etcd_operator import __version__
from etcd_operator.naming import CLUSTER_DOMAIN_ENV, DEFAULT_CLUSTER_DOMAIN, valid_cluster_domain
from etcd_operator.scope import NAMESPACES_ENV, parse_namespaces, valid_namespace

# `snapshot-fetch`: the snapshot is missing or fails a check (the reason is on stderr).
SNAPSHOT_INVALID_EXIT = 46


def _run(args: argparse.Namespace) -> int:
    # kopf's own CLI does the heavy lifting (peering, probes, signals); we only
    # point it at our handlers so users never need to know the module path.
    from kopf.cli import main as kopf_main

    # The handlers read their settings from the environment (as in a Deployment's env).
    if args.cluster_domain is not None:
        os.environ[CLUSTER_DOMAIN_ENV] = args.cluster_domain
    # Flags win over the environment; the handlers learn the mode from the environment.
    namespaces = args.namespace or parse_namespaces([os.environ.get(NAMESPACES_ENV, "")])
    os.environ[NAMESPACES_ENV] = ",".join(namespaces)
    try:
        _ha_environment(args)
    except ValueError as e:
        print(f"etcd-operator run: {e}", file=sys.stderr)
        return 2
    from etcd_operator.leader import LEADER_ELECT_ENV

    kopf_args = ["run", "--module", "etcd_operator.handlers", "--log-format", args.log_format]
    if args.standalone or os.environ.get(LEADER_ELECT_ENV):
        # With --leader-elect our Lease decides who acts; kopf's own peering stays off.
        kopf_args.append("--standalone")
    if namespaces:
        for ns in namespaces:
            kopf_args += ["--namespace", ns]
    else:
        kopf_args.append("--all-namespaces")
    if args.liveness:
        kopf_args += ["--liveness", args.liveness]
    if args.verbose:
        kopf_args.append("--verbose")
    try:
        kopf_main.main(args=kopf_args, prog_name="etcd-operator run", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _ha_environment(args: argparse.Namespace) -> None:
    """Leader election, health and metrics settings reach the handlers as environment."""
    from etcd_operator import leader, serving

    flags = {
        leader.LEASE_NAME_ENV: args.lease_name,
        leader.LEASE_NAMESPACE_ENV: args.lease_namespace,
        leader.LEASE_DURATION_ENV: args.lease_duration,
        leader.RENEW_DEADLINE_ENV: args.renew_deadline,
        leader.RETRY_PERIOD_ENV: args.retry_period,
        serving.HEALTH_PORT_ENV: args.health_port,
        serving.METRICS_PORT_ENV: args.metrics_port,
        serving.STALL_AFTER_ENV: args.watch_stall_seconds,
    }
    if args.leader_elect:
        os.environ[leader.LEADER_ELECT_ENV] = "true"
    for env, value in flags.items():
        if value is not None:
            os.environ[env] = str(value)
    if leader.enabled():
        leader.timing_from_env()  # raises on an impossible combination, before kopf starts


def _member_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from etcd_operator.memberinit import Identity, check_data_dir

    verdict, message = check_data_dir(
        Path(args.data_dir),
        Identity(args.cluster_uid, args.member),
        args.expect_data,
        member_id=int(args.member_id, 16) if args.member_id else None,
    )
    # stderr becomes the termination message (FallbackToLogsOnError) that Events show.
    print(f"member-init: {verdict.name}: {message}", file=sys.stderr)
    return int(verdict)


def _snapshot_fetch(args: argparse.Namespace) -> int:
    from etcd_operator.restore.integrity import SnapshotInvalid, fetch_file
    from etcd_operator.restore.staging import clear_staging

    if args.clear_staging:
        clear_staging(Path(args.clear_staging))
    try:
        if args.s3:
            import asyncio

            from etcd_operator.restore.fetch_s3 import fetch_s3, s3_location

            location = s3_location(args.s3, args.s3_credentials)
            checked = asyncio.run(fetch_s3(location, Path(args.target), args.sha256))
        else:
            checked = fetch_file(Path(args.source), Path(args.target), args.sha256)
    except SnapshotInvalid as e:
        print(f"snapshot-fetch: {e.reason}: {e}", file=sys.stderr)
        return SNAPSHOT_INVALID_EXIT
    print(f"snapshot-fetch: ok: {checked.size} bytes, sha256 {checked.sha256}", file=sys.stderr)
    return 0


def _restore_commit(args: argparse.Namespace) -> int:
    from etcd_operator.restore.staging import commit

    code, message = commit(Path(args.staging), Path(args.data_dir))
    print(f"restore-commit: {code.name}: {message}", file=sys.stderr)
    return int(code)


def _version(_args: argparse.Namespace) -> int:
    print(__version__)
    return 0


def _manifests(args: argparse.Namespace) -> int:
    # Imported here: the init containers' subcommands start without lightkube and pydantic.
    from etcd_operator.manifests import generated_files

    stale = []
    for path, content in generated_files().items():
        if path.parts[0] == "charts":
            target = Path(args.chart).joinpath(*path.parts[2:])
        elif path.parts[0] == "docs":
            # --docs names the API reference; other generated pages go beside it.
            target = (
                Path(args.docs).with_name(path.name) if path.name != "api.md" else Path(args.docs)
            )
        else:  # pragma: no cover - generated_files only knows these roots
            raise AssertionError(path)
        current = target.read_text() if target.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        print(f"wrote {target}")
    if stale:
        print("out of date (run `make manifests`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def _cluster_domain(value: str) -> str:
    if not valid_cluster_domain(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a DNS domain")
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from e
    if not seconds > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port")
    return int(value)


def _namespace(value: str) -> str:
    if not valid_namespace(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a namespace name")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etcd-operator", description="Kubernetes operator for etcd clusters."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        type=_namespace,
        help=f"watch only this namespace (repeatable; default: ${NAMESPACES_ENV},"
        " comma-separated, else every namespace)",
    )
    run.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--standalone", action="store_true", help="no peering with other replicas")
    run.add_argument(
        "--cluster-domain",
        type=_cluster_domain,
        help=f"the Kubernetes cluster's DNS domain (default: ${CLUSTER_DOMAIN_ENV},"
        f" else {DEFAULT_CLUSTER_DOMAIN})",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument(
        "--log-format",
        choices=("plain", "full", "json"),
        default="full",
        help="log lines: human-readable (full: with time and level) or one JSON object each",
    )
    ha = run.add_argument_group("high availability, health and metrics")
    ha.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a Lease acts"
        " (default: $ETCD_OPERATOR_LEADER_ELECT)",
    )
    ha.add_argument("--lease-name", help="the Lease's name (default: etcd-operator-leader)")
    ha.add_argument(
        "--lease-namespace",
        type=_namespace,
        help="the Lease's namespace (default: $POD_NAMESPACE, the operator's own)",
    )
    ha.add_argument(
        "--lease-duration",
        type=_seconds,
        help="seconds a standby waits for an unrenewed Lease before taking it (default 15)",
    )
    ha.add_argument(
        "--renew-deadline",
        type=_seconds,
        help="seconds after its last renewal the leader stops acting (default 10;"
        " less than the lease duration: the difference is the fencing margin)",
    )
    ha.add_argument(
        "--retry-period", type=_seconds, help="seconds between Lease reads/renewals (default 2)"
    )
    ha.add_argument(
        "--health-port",
        type=_port,
        help="serve /healthz, /readyz and /leaderz on this port (default: off)",
    )
    ha.add_argument(
        "--metrics-port", type=_port, help="serve Prometheus /metrics on this port (default: off)"
    )
    ha.add_argument(
        "--watch-stall-seconds",
        type=_seconds,
        help="liveness fails when the watch lags a listed EtcdCluster this long (default 120)",
    )
    run.set_defaults(func=_run)

    manifests = sub.add_parser(
        "manifests", help="write the chart's CRDs and RBAC rules, and the API and RBAC references"
    )
    manifests.add_argument(
        "--docs",
        default="docs/api.md",
        help="where to write the API reference (the RBAC reference, rbac.md, goes beside it)",
    )
    manifests.add_argument(
        "--chart",
        default="charts/etcd-operator",
        help="the Helm chart's directory (its crds/ and generated RBAC rules)",
    )
    manifests.add_argument(
        "--check", action="store_true", help="write nothing; fail if any file is out of date"
    )
    manifests.set_defaults(func=_manifests)

    init = sub.add_parser(
        "member-init", help="(init container) check a member's data directory before etcd starts"
    )
    init.add_argument("--data-dir", required=True)
    init.add_argument("--cluster-uid", required=True)
    init.add_argument("--member", required=True)
    init.add_argument(
        "--expect-data", action="store_true", help="the member has voted before: data must exist"
    )
    init.add_argument(
        "--member-id",
        help="hex ID of the member whose write-ahead log the volume must hold (implies data)",
    )
    init.set_defaults(func=_member_init)

    fetch = sub.add_parser(
        "snapshot-fetch",
        help="(init container) copy a snapshot and check its sha256 and etcd's hash trailer",
    )
    source = fetch.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", help="the snapshot file to read")
    source.add_argument(
        "--s3",
        help="the snapshot object: JSON with bucket, key, endpointURL, region, forcePathStyle",
    )
    fetch.add_argument(
        "--s3-credentials", help="directory of the mounted Secret (accessKeyID, secretAccessKey)"
    )
    fetch.add_argument("--target", required=True, help="where the checked copy goes")
    fetch.add_argument("--sha256", help="hex sha256 the whole file must have")
    fetch.add_argument(
        "--clear-staging", help="remove this directory first (an interrupted restore's)"
    )
    fetch.set_defaults(func=_snapshot_fetch)

    commit = sub.add_parser(
        "restore-commit",
        help="(init container) move a restored data directory into place unless one exists",
    )
    commit.add_argument("--staging", required=True)
    commit.add_argument("--data-dir", required=True)
    commit.set_defaults(func=_restore_commit)
    backup = sub.add_parser(
        "backup",
        help="(backup Job) stream one member's snapshot to the destination in the environment",
    )
    backup.set_defaults(func=_backup)
    backup_delete = sub.add_parser(
        "backup-delete",
        help="(backup delete Job) remove a stored snapshot and its manifest (the environment's)",
    )
    backup_delete.set_defaults(func=_backup_delete)

    version = sub.add_parser("version", help="print the operator version")
    version.set_defaults(func=_version)
    return parser


def _backup(args: argparse.Namespace) -> int:
    # Everything comes from the environment and mounted Secrets (backup/contract.py):
    # nothing secret on the command line.
    from etcd_operator.backup.run import main as run_backup

    return run_backup()


def _backup_delete(args: argparse.Namespace) -> int:
    from etcd_operator.backup.delete import main as run_delete

    return run_delete()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
