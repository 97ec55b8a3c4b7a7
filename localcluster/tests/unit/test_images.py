"""Image references map to local programs with Kubernetes command/args semantics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from localcluster import images

BIN = {"3.5.17": Path("/opt/etcd-3.5.17"), "3.6.7": Path("/opt/etcd-3.6.7")}


def lookup(version: str) -> Path | None:
    return BIN.get(version)


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("quay.io/coreos/etcd:v3.5.17", "3.5.17"),
        ("registry.k8s.io/etcd:3.6.7-0", "3.6.7"),
        ("gcr.io/etcd-development/etcd:v3.6.7", "3.6.7"),
        ("localhost:5000/etcd:v3.6.7@sha256:abcd", "3.6.7"),
    ],
)
def test_etcd_images_map_to_exact_version(image: str, version: str) -> None:
    local = images.resolve_image(image, lookup)
    assert local.entrypoint == (str(BIN[version] / "etcd"),)
    assert local.path_env.startswith(str(BIN[version]))
    assert local.resolve("/usr/local/bin/etcdctl") == str(BIN[version] / "etcdctl")
    assert local.resolve("etcdutl") == str(BIN[version] / "etcdutl")


@pytest.mark.parametrize(
    "image", ["quay.io/coreos/etcd:v3.4.1", "quay.io/coreos/etcd:latest", "nginx:1.25", "etcd"]
)
def test_unknown_images_are_not_found(image: str) -> None:
    with pytest.raises(images.ImageNotFound):
        images.resolve_image(image, lookup)


def test_command_overrides_entrypoint_and_args_override_cmd() -> None:
    etcd = images.resolve_image("quay.io/coreos/etcd:v3.5.17", lookup)
    assert images.container_argv(etcd, None, ["--name", "a"]) == [
        "/opt/etcd-3.5.17/etcd",
        "--name",
        "a",
    ]
    assert images.container_argv(etcd, ["/usr/local/bin/etcd"], None) == ["/opt/etcd-3.5.17/etcd"]
    shell = images.resolve_image("busybox:1.36", lookup)
    assert images.container_argv(shell, None, None) == ["/bin/sh"]
    assert images.container_argv(shell, ["sh", "-c", "true"], None)[1:] == ["-c", "true"]


def test_operator_image_maps_to_project_entry_point() -> None:
    op = images.resolve_image("ghcr.io/example/etcd-operator:dev", lookup)
    assert op.entrypoint == (str(Path(sys.prefix) / "bin" / "etcd-operator"),)
    assert op.resolve("python") == sys.executable


def test_parse_reference_handles_registry_ports() -> None:
    assert images.parse_reference("localhost:5000/etcd") == ("localhost:5000/etcd", "latest")
    assert images.parse_reference("etcd:v3.6.7") == ("etcd", "v3.6.7")
