"""Pure decision logic: observed state in, the next safe step out. No I/O.

The shell builds an `Observed`, calls `decide()` (or `next_step()`), applies exactly the
returned step and writes status. All safety rules live here; see docs/planner.md.
"""

from etcd_operator.planner.decide import decide, next_step
from etcd_operator.planner.model import (
    ClusterRef,
    DesiredSpec,
    EtcdMember,
    MemberHealth,
    Observed,
    PodPhase,
    PodState,
    PvcRetention,
    PvcState,
)
from etcd_operator.planner.steps import (
    AddLearner,
    Bootstrap,
    ClusterState,
    CreatePod,
    Decision,
    Degraded,
    DeletePod,
    DeletePVC,
    Done,
    InitialCluster,
    InSync,
    MarkBootstrapped,
    MoveLeader,
    Paused,
    PromoteLearner,
    Reason,
    RemoveMember,
    Step,
    UpgradeMember,
    Wait,
    is_disruptive,
)
from etcd_operator.planner.view import CATCH_UP_MAX_LAG, quorum

__all__ = [
    "CATCH_UP_MAX_LAG",
    "AddLearner",
    "Bootstrap",
    "ClusterRef",
    "ClusterState",
    "CreatePod",
    "Decision",
    "Degraded",
    "DeletePVC",
    "DeletePod",
    "DesiredSpec",
    "Done",
    "EtcdMember",
    "InSync",
    "InitialCluster",
    "MarkBootstrapped",
    "MemberHealth",
    "MoveLeader",
    "Observed",
    "Paused",
    "PodPhase",
    "PodState",
    "PromoteLearner",
    "PvcRetention",
    "PvcState",
    "Reason",
    "RemoveMember",
    "Step",
    "UpgradeMember",
    "Wait",
    "decide",
    "is_disruptive",
    "next_step",
    "quorum",
]
