"""The ModelDeployment API (group ``coalmine.dev``, version ``v1alpha1``), defined once.

The pydantic models here are the single source of truth: the CRD in ``crds/`` is generated
from them (``coalmine crd``), and ``coalmine validate`` checks manifests with them offline.
"""

from coalmine.api.base import Duration, format_duration, parse_duration
from coalmine.api.canary import Analysis, CanaryStrategy, Policy, RollbackPolicy, Step
from coalmine.api.checks import (
    Check,
    DriftCheck,
    ErrorRateCheck,
    ErrorRateVsStable,
    LatencyCheck,
    LatencyVsStable,
    PromQLCheck,
    QualityCheck,
    QualityVsStable,
    default_checks,
)
from coalmine.api.feedback import Feedback
from coalmine.api.model import ModelFormat, ModelSource, S3Source
from coalmine.api.resource import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ModelDeployment,
    ObjectMeta,
)
from coalmine.api.runtime import Runtime
from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import (
    AnalysisStatus,
    CheckStatus,
    Condition,
    HistoryEntry,
    ModelDeploymentStatus,
    Phase,
    RevisionRef,
    RollbackRecord,
    Verdict,
)
from coalmine.api.traffic import GatewayApiRoute, ParentRef, RouterKind, Traffic

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Analysis",
    "AnalysisStatus",
    "CanaryStrategy",
    "Check",
    "CheckStatus",
    "Condition",
    "DriftCheck",
    "Duration",
    "ErrorRateCheck",
    "ErrorRateVsStable",
    "Feedback",
    "GatewayApiRoute",
    "HistoryEntry",
    "LatencyCheck",
    "LatencyVsStable",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelFormat",
    "ModelSource",
    "ObjectMeta",
    "ParentRef",
    "Phase",
    "Policy",
    "PromQLCheck",
    "QualityCheck",
    "QualityVsStable",
    "RevisionRef",
    "RollbackPolicy",
    "RollbackRecord",
    "RouterKind",
    "Runtime",
    "S3Source",
    "Step",
    "Traffic",
    "Verdict",
    "default_checks",
    "format_duration",
    "parse_duration",
]
