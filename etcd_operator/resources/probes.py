"""Health probes of an etcd member, chosen for what each probe does to a member.

All probes go to the metrics listener (2381), which serves /health, /livez and
/readyz over plain HTTP even once the client and peer ports require TLS, as
kubeadm's etcd pods do.

- readiness: `/readyz` checks for a data-corruption alarm, a local (serializable)
  read, a linearizable read (so the member is connected to a quorum with a leader)
  and that the member is not a learner. Ready therefore means "a voting member that
  can serve clients": learners and members cut off from quorum drop out of the
  client Service, and the PodDisruptionBudget counts exactly the voting members
  that keep quorum.
- liveness: `/livez` is only a local read, so a member cut off from its peers is
  not restarted (a restart would not help it, and would lose its in-memory state).
  Its threshold is generous (3 minutes) because reads stall while a member
  defragments, and restarting a member in the middle of a defrag only makes it
  start again.
- startup: `/livez` as well, not `/readyz`: a member that starts while its peers
  are down (a whole-cluster restart) must not be killed for lacking a leader. It
  allows 5 minutes for a large backend and WAL to load.

Members older than 3.5.11 lack /livez and /readyz; they get `/health` (which
includes a linearizable read) for readiness and `/health?serializable=true` for
liveness, both ignoring the NOSPACE alarm, which restarts cannot fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightkube.models.core_v1 import HTTPGetAction, Probe

from etcd_operator.naming import METRICS_PORT
from etcd_operator.versions import has_livez_readyz


@dataclass(frozen=True)
class MemberProbes:
    startup: Probe
    liveness: Probe
    readiness: Probe


def _http(path: str, *, period: int, timeout: int, failures: int) -> Probe:
    return Probe(
        httpGet=HTTPGetAction(path=path, port=METRICS_PORT, scheme="HTTP"),
        periodSeconds=period,
        timeoutSeconds=timeout,
        failureThreshold=failures,
        successThreshold=1,
    )


def member_probes(version: str) -> MemberProbes:
    if has_livez_readyz(version):
        live, ready = "/livez", "/readyz"
    else:
        live, ready = "/health?serializable=true&exclude=NOSPACE", "/health?exclude=NOSPACE"
    return MemberProbes(
        # Probed often so a started member turns ready in ~2 s, not ~10 (same 5 min budget).
        startup=_http(live, period=2, timeout=2, failures=150),
        liveness=_http(live, period=10, timeout=10, failures=18),
        readiness=_http(ready, period=5, timeout=5, failures=3),
    )
