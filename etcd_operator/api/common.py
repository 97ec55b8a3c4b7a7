"""Building blocks shared by every kind of the `etcd.operator.io` API group.

Models are frozen pydantic models whose Python names are snake_case and whose
wire names (aliases) are the Kubernetes camelCase ones. Field descriptions end up
in the generated CRD schema and in docs/api.md, so write them for users.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "etcd.operator.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes resource.Quantity in its string form ("1Gi", "500m", "2e3").
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# Names of other objects a spec refers to (Secrets, claims, EtcdBackups): lowercase
# alphanumerics, '-' and '.', alphanumeric at both ends. The API server checks the rest.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# A DNS-1123 subdomain, label by label.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A sha256 digest in lowercase hex."""

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]
"""A quantity that must be a string (so CEL's `quantity()` can read it)."""

IntOrQuantity = Annotated[
    int | str,
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]
"""A quantity as Kubernetes accepts it in resources: `2` or `"500m"`."""

FreeForm = dict[str, Any]
"""An object passed through to Kubernetes as-is (schema: preserve unknown fields)."""

# What a CEL rule attached to a model looks like in `json_schema_extra`.
CelRule = dict[str, str]


def cel(rule: str, message: str, *, reason: str | None = None) -> CelRule:
    """One `x-kubernetes-validations` entry."""
    entry = {"rule": rule, "message": message}
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: CelRule) -> dict[str, Any]:
    """`json_schema_extra` for a model or field that carries CEL rules."""
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """Base of every API object: frozen, camelCase on the wire, unknown fields rejected.

    Unknown fields are rejected rather than ignored: the API server already prunes
    fields its schema does not know, so an unknown field here means the CRD is newer
    than this operator (e.g. a rolled-back operator meeting `spec.tls`), and acting
    while silently ignoring such a field would be worse than refusing.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        use_enum_values=False,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The object as Kubernetes stores it (camelCase, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ResourceMeta(ApiModel):
    """The parts of an object's metadata the operator reads; the rest of kopf's body is
    ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=253)
    namespace: str
    uid: str = ""
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    creation_timestamp: datetime | None = None


class Resource(ApiModel):
    """A whole custom resource of the group as handlers see it; each kind narrows `kind`
    and adds its spec and status."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["etcd.operator.io/v1alpha1"] = "etcd.operator.io/v1alpha1"
    kind: str
    metadata: ResourceMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's state, in the standard `metav1.Condition` shape."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        max_length=316,
        description="Type of condition in CamelCase: Available, Progressing or Degraded.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The .metadata.generation the condition was set for.",
    )
    last_transition_time: datetime = Field(
        description="When the condition last changed from one status to another."
    )
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        min_length=1,
        max_length=1024,
        description="Programmatic identifier of the reason for the last transition, CamelCase.",
    )
    message: str = Field(
        max_length=32768,
        description="Human readable details of the last transition; may be empty.",
    )


def conditions_field(description: str, *, empty_list: bool = False) -> Any:
    """`status.conditions`: a list keyed by type, as metav1.Condition lists are, so that each
    condition merges on its own under server-side apply. Unset reads as None, or as an empty
    list with `empty_list`."""
    keyed: dict[str, Any] = {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }
    if empty_list:
        return Field(default_factory=list, description=description, json_schema_extra=keyed)
    return Field(default=None, description=description, json_schema_extra=keyed)


def next_condition(  # noqa: PLR0917 - one argument per field of a condition
    previous: Iterable[Condition],
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> Condition:
    """The condition `kind` as set now: its transition time moves only when its status does."""
    before = next((c for c in previous if c.type == kind), None)
    since = before.last_transition_time if before is not None and before.status == status else now
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message[:32768],
        observed_generation=generation,
        last_transition_time=since,
    )


class OperationState(StrEnum):
    PROCESSING = "Processing"
    SUCCEEDED = "Succeeded"
    ERROR = "Error"


class LastOperation(ApiModel):
    """The last action the operator took on the object, for `kubectl describe`."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        max_length=64,
        description=(
            "What the operator did, named after the planner step, e.g. Bootstrap, "
            "AddLearner, PromoteLearner, RemoveMember, ReplacePod, UpgradeMember."
        ),
    )
    state: OperationState = Field(
        description=(
            "Processing while the step is under way, Succeeded once it is done, "
            "Error when it failed and will be retried."
        )
    )
    description: str = Field(
        max_length=4096, description="One sentence for humans: what was done to which member, why."
    )
    time: datetime = Field(description="When the state was last updated.")


# Member phases etc. are Literal rather than StrEnum where the set is closed and
# only meaningful on the wire.
CompactionMode = Literal["periodic", "revision"]
RetentionPolicy = Literal["Retain", "Delete"]
