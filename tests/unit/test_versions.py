"""etcd versions: one parser for the API, the planner and status."""

from __future__ import annotations

import pytest

from etcd_operator.versions import (
    Version,
    etcd_image,
    has_livez_readyz,
    parse_spec_version,
    parse_version,
    version_key,
)


def test_versions() -> None:
    assert parse_spec_version("3.5.35") == Version(3, 5, 35)
    assert etcd_image("3.5.35") == "gcr.io/etcd-development/etcd:v3.5.35"
    assert has_livez_readyz("3.6.0") and has_livez_readyz("3.5.11")
    assert not has_livez_readyz("3.5.10")
    with pytest.raises(ValueError, match="not an etcd version"):
        parse_spec_version("3.6")


def test_reported_versions_parse_leniently_and_sort_by_number() -> None:
    assert parse_version("v3.6.0-rc.1") == Version(3, 6, 0)
    assert parse_version("3.6") is None
    assert sorted(["3.10.0", "3.9.1", "junk"], key=version_key) == ["junk", "3.9.1", "3.10.0"]


@pytest.mark.parametrize(
    ("image", "named", "at_3_5_35"),
    [
        ("gcr.io/etcd-development/etcd:v3.6.16", "3.6.16", "gcr.io/etcd-development/etcd:v3.5.35"),
        ("registry:5000/etcd:3.6.16-fips", "3.6.16", "registry:5000/etcd:3.5.35-fips"),
        ("mirror/etcd:v3.6.16@sha256:abc", "3.6.16", "mirror/etcd:v3.5.35"),
        ("registry:5000/etcd:latest", None, "registry:5000/etcd:latest"),
        ("mirror/etcd@sha256:abc", None, "mirror/etcd@sha256:abc"),
    ],
)
def test_an_image_tag_that_names_a_release_follows_the_members_version(
    image: str, named: str | None, at_3_5_35: str
) -> None:
    from etcd_operator.versions import image_version, image_with_version

    assert image_version(image) == named
    assert image_with_version(image, "3.5.35") == at_3_5_35
    assert image_with_version(image, named or "3.6.16") == image
