"""Command lines of the control-plane components (pure functions: easy to read and to test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e2e.devcluster.pki import ControlPlanePki

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service: first address of SERVICE_CIDR
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int


def etcd_argv(bin_dir: Path, data_dir: Path, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=coalmine-dev",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=coalmine-dev={peer}",
        # A throwaway test store: durability costs start-up and write latency for nothing.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_argv(
    bin_dir: Path,
    pki: ControlPlanePki,
    ports: Ports,
    cert_dir: Path,
    advertise: str,
    bind: str = "127.0.0.1",
    audit_dir: Path | None = None,
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        *_audit(audit_dir),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        # 0.0.0.0 only with a node (e2e): pods reach the apiserver on the pod bridge's address.
        f"--bind-address={bind}",
        f"--secure-port={ports.apiserver}",
        f"--advertise-address={advertise}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        # Lets `kubectl logs/exec` reach a kubelet (if any) as the admin, authorized by RBAC.
        f"--kubelet-client-certificate={pki.admin.cert}",
        f"--kubelet-client-key={pki.admin.key}",
        # By address, not by the node's host name, which no DNS here resolves.
        "--kubelet-preferred-address-types=InternalIP",
        "--authorization-mode=RBAC",
        # PodSecurity is on by default; naming it makes the tested configuration explicit.
        "--enable-admission-plugins=PodSecurity",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        *_endpoint_reconciler(advertise),
        "--profiling=false",
        "--v=1",
    ]


AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Who wrote what, for service accounts only (the operators under test run as such): the HA
  # tests assert that only the leader's account writes.
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"""


def _audit(audit_dir: Path | None) -> list[str]:
    """The audit log (JSON lines, ``audit_dir/audit.log``) of service accounts' writes."""
    if audit_dir is None:
        return []
    audit_dir.mkdir(parents=True, exist_ok=True)
    policy = audit_dir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={audit_dir / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
    ]


def controller_manager_argv(
    bin_dir: Path, pki: ControlPlanePki, ports: Ports, kubeconfig: Path, cert_dir: Path
) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # No front proxy (aggregation layer) here, so there is no request-header CA to look up.
        "--authentication-skip-lookup=true",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={cert_dir}",
        # One instance only: leader election would just add a lease round-trip to start-up.
        "--leader-elect=false",
        # Each controller runs under its own service account (system:controller:*), as in a
        # real cluster, which needs the key to mint their tokens.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        # The default controller set (GC, namespace, deployment, replicaset, serviceaccount,
        # ...): node-side controllers idle without nodes, and no cloud provider is configured.
        "--v=1",
    ]


def _endpoint_reconciler(advertise: str) -> list[str]:
    # The `kubernetes` Service's endpoints may not be loopback addresses, so the apiserver would
    # log a failure every few seconds; with nothing in a pod to use the service, turn it off.
    return ["--endpoint-reconciler-type=none"] if advertise.startswith("127.") else []
