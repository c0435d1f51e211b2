"""KUBELET STAND-IN, for the integration tier and the demo: there is no kubelet (and no
scheduler) on the bare control plane, so this plays the node's part for the pods of one namespace.

What is real: the API server admits the pods (Pod Security "restricted" included), the real
ReplicaSet and Deployment controllers create and delete them and compute every Deployment
status the operator reads. What this stand-in does instead of a kubelet: for each pod it runs
the pod's init containers and its server container as local processes (``coalmine-serve``
with the pod's own args and env, ``secretKeyRef`` values read from their Secret), each pod
on its own loopback address (127.77.x.y:8080, the container port), maps the pod's emptyDir
mounts to directories, copies its Secret volumes into files the way a kubelet lays them out
and refreshes them when the Secret changes (``e2e.devcluster.secretvolumes``), marks the pod
Ready in ``pods/status`` once ``/v2/health/ready`` answers, registers ready pods as
Prometheus targets, reports a failed init container in ``pods/status`` the way a kubelet does
(``initContainerStatuses[].state.terminated``: exit code, ``Error``, the tail of its output as
the message under ``FallbackToLogsOnError``), and stops the processes of pods being deleted
the way a kubelet does: out of traffic at once, then the preStop sleep, then SIGTERM. Not
enforced here: images, resource limits, the read-only root filesystem and the user id (only
the API's admission checks those). Failed init containers are not restarted.
"""

from __future__ import annotations

import base64
import fcntl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from e2e.devcluster import PRODUCT_PYTHONPATH, secretvolumes
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.secretvolumes import SecretVolume

SERVE_COMMANDS = {"coalmine-serve": [sys.executable, "-m", "coalmine_serving.cli"]}
POLL_SECONDS = 0.25
READY_TIMEOUT = 60.0
TERMINATION_LINES, TERMINATION_BYTES = 80, 2048
"""The kubelet's ``FallbackToLogsOnError`` tail: the last 80 lines, at most 2048 bytes."""


SUBNET_LOCKS = Path(tempfile.gettempdir()) / "coalmine-standin-subnets"
"""One lock file per third octet of 127.77.x.y, held by the process whose pods use it."""


@dataclass
class SubnetClaim:
    """A third octet no other process on this machine uses while this claim is held.

    Each pytest process (two integration slots, xdist workers, the demo) counts its sandboxes
    from 1, so without a machine-wide claim two processes gave pods the same 127.77.1.y:8080:
    the second server could not bind, its stand-in found the other process's server answering
    /v2/health/ready, marked the pod Ready, and Prometheus scraped the other test's series,
    leaving this test's canary with no samples at all ("canary stale").
    """

    subnet: int
    _lock: Any

    @classmethod
    def take(cls, start: int = 1) -> SubnetClaim:
        """The first free octet from ``start`` on (wrapping): an flock, released when the
        claim is released or the process dies."""
        SUBNET_LOCKS.mkdir(parents=True, exist_ok=True)
        for offset in range(254):
            subnet = (start - 1 + offset) % 254 + 1
            handle = (SUBNET_LOCKS / str(subnet)).open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return cls(subnet, handle)
        raise RuntimeError(f"all 254 stand-in subnets are in use ({SUBNET_LOCKS})")

    def release(self) -> None:
        self._lock.close()


@dataclass
class StandInPod:
    name: str
    labels: dict[str, str]
    ip: str
    port: int
    workdir: Path
    drain_seconds: float = 0.0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    secrets: list[SecretVolume] = field(default_factory=list)
    """Filled once the pod's Secrets are in place; refreshed from then on."""
    ready: bool = False
    failed: str | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


class KubeletStandIn:
    def __init__(
        self,
        api: httpx.Client,
        namespace: str,
        workdir: Path,
        prometheus: PrometheusServer | None,
        subnet: int,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._workdir = workdir
        self._prometheus = prometheus
        self._subnet = subnet  # third octet, one per sandbox (SubnetClaim): no address collides
        self._next_host = 1
        self._pods: dict[str, StandInPod] = {}
        self._draining: list[StandInPod] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet-standin", daemon=True)
        self._targets: list[str] = []
        self._secrets_synced = 0.0
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for pod in [*self._pods.values(), *self._draining]:
                _kill(pod)
            self._pods.clear()
            self._draining.clear()

    def ready_pods(self) -> list[StandInPod]:
        with self._lock:
            return [pod for pod in self._pods.values() if pod.ready]

    # --- the loop ---

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
                self._refresh_secrets()
            except Exception as exc:  # keep the node alive; the test sees errors
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(POLL_SECONDS)

    def _sync(self) -> None:
        response = self._api.get(f"/api/v1/namespaces/{self._namespace}/pods")
        response.raise_for_status()
        live = {
            item["metadata"]["name"]: item
            for item in response.json()["items"]
            if not item["metadata"].get("deletionTimestamp")
        }
        with self._lock:
            gone = [name for name in self._pods if name not in live]
            for name in gone:
                self._drain(self._pods.pop(name))
            new = [item for name, item in live.items() if name not in self._pods]
            for item in new:
                self._pods[item["metadata"]["name"]] = self._allocate(item)
        for item in new:
            threading.Thread(target=self._boot, args=(item,), daemon=True).start()
        self._update_targets()

    def _refresh_secrets(self) -> None:
        """Every pod's Secret volumes follow their Secret, a sync period late."""
        if time.monotonic() - self._secrets_synced < secretvolumes.SYNC_SECONDS:
            return
        self._secrets_synced = time.monotonic()
        with self._lock:
            volumes = [volume for pod in self._pods.values() for volume in pod.secrets]
        for volume in volumes:
            secretvolumes.sync(self._api, self._namespace, volume)

    def _drain(self, pod: StandInPod) -> None:
        """A deleted pod leaves the endpoints at once but serves through its preStop sleep,
        as under a real kubelet, so in-flight and racing requests still get answers."""
        pod.ready = False
        self._draining.append(pod)
        timer = threading.Timer(pod.drain_seconds, self._finish_drain, args=(pod,))
        timer.daemon = True
        timer.start()

    def _finish_drain(self, pod: StandInPod) -> None:
        _kill(pod)
        with self._lock:
            if pod in self._draining:
                self._draining.remove(pod)

    def _allocate(self, pod: dict[str, Any]) -> StandInPod:
        host = self._next_host
        self._next_host += 1
        name = pod["metadata"]["name"]
        port = int(pod["spec"]["containers"][0].get("ports", [{}])[0].get("containerPort", 8080))
        return StandInPod(
            name=name,
            labels=dict(pod["metadata"].get("labels", {})),
            ip=f"127.77.{self._subnet}.{host}",
            port=port,
            workdir=self._workdir / name,
            drain_seconds=_prestop_sleep(pod),
        )

    def _boot(self, pod_body: dict[str, Any]) -> None:
        name = pod_body["metadata"]["name"]
        with self._lock:
            pod = self._pods.get(name)
        if pod is None:
            return
        try:
            mounts = _volume_dirs(pod_body, pod.workdir)
            self._place_secrets(pod, secretvolumes.secret_volumes(pod_body, pod.workdir))
            for init in pod_body["spec"].get("initContainers", []):
                self._run_init(pod, init, mounts)
            server = pod_body["spec"]["containers"][0]
            pod.processes.append(self._spawn(pod, server, mounts, "server"))
            if self._stop.is_set():
                # Stopped while this pod booted (its init container outlived the test):
                # stop() killed what it saw, perhaps before this server existed.
                _kill(pod)
                return
            self._wait_ready(pod)
            self._mark_ready(pod)
        except Exception as exc:
            pod.failed = f"{type(exc).__name__}: {exc}"
            self.errors.append(f"pod {name}: {pod.failed}")

    def _place_secrets(self, pod: StandInPod, volumes: list[SecretVolume]) -> None:
        """Like a kubelet, start no container before every Secret the pod mounts exists."""
        deadline = time.monotonic() + READY_TIMEOUT
        for volume in volumes:
            while not secretvolumes.sync(self._api, self._namespace, volume):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Secret {volume.secret} never appeared")
                time.sleep(POLL_SECONDS)
        pod.secrets = volumes

    def _run_init(
        self, pod: StandInPod, container: dict[str, Any], mounts: dict[str, Path]
    ) -> None:
        process = self._spawn(pod, container, mounts, container["name"])
        code = process.wait(timeout=60)
        if code != 0:
            log = (pod.workdir / f"{container['name']}.log").read_text()
            self._report_init_failure(pod, container, code, log)
            raise RuntimeError(f"init container {container['name']} failed: {log[-2000:]}")

    def _report_init_failure(
        self, pod: StandInPod, container: dict[str, Any], code: int, log: str
    ) -> None:
        """What a kubelet writes when an init container fails: its terminated state, whose
        message under ``FallbackToLogsOnError`` is the tail of its output (the last 80 lines,
        at most 2048 bytes), which is where the operator reads the fetch's reason."""
        message = ""
        if container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "\n".join(log.splitlines()[-TERMINATION_LINES:])
            message = message.encode()[-TERMINATION_BYTES:].decode(errors="ignore")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {
            "exitCode": code,
            "reason": "Error",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        state = {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": terminated},
            "lastState": {},
        }
        status = {"phase": "Pending", "initContainerStatuses": [state]}
        response = self._api.patch(
            f"/api/v1/namespaces/{self._namespace}/pods/{pod.name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code != 404:  # 404: deleted meanwhile
            response.raise_for_status()

    def _spawn(
        self, pod: StandInPod, container: dict[str, Any], mounts: dict[str, Path], log_name: str
    ) -> subprocess.Popen[bytes]:
        command = list(container.get("command", []))
        argv = [*SERVE_COMMANDS.get(command[0], command[:1]), *command[1:]]
        argv += [_rewrite(arg, mounts) for arg in container.get("args", [])]
        env = {
            "PATH": "/usr/bin:/bin",
            "TMPDIR": str(mounts.get("/tmp", pod.workdir)),
            "PYTHONPATH": PRODUCT_PYTHONPATH,
        }
        env.update(self._container_env(container))
        # The pod's own address; the server's default 0.0.0.0 would collide across pods.
        env["COALMINE_SERVING_HOST"] = pod.ip
        log = (pod.workdir / f"{log_name}.log").open("ab")
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def _container_env(self, container: dict[str, Any]) -> dict[str, str]:
        """Literal values, and ``valueFrom.secretKeyRef`` read from the Secret the way a
        kubelet does when it starts the container: a missing key fails the container unless
        the reference is optional."""
        values: dict[str, str] = {}
        for entry in container.get("env", []):
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                values[entry["name"]] = entry.get("value", "")
                continue
            value = self._secret_value(ref["name"], ref["key"])
            if value is not None:
                values[entry["name"]] = value
            elif not ref.get("optional"):
                raise RuntimeError(f"Secret {ref['name']} has no key {ref['key']}")
        return values

    def _secret_value(self, secret: str, key: str) -> str | None:
        response = self._api.get(f"/api/v1/namespaces/{self._namespace}/secrets/{secret}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        encoded = (response.json().get("data") or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded is not None else None

    def _wait_ready(self, pod: StandInPod) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://{pod.address}/v2/health/ready"
        while time.monotonic() < deadline:
            if pod.processes[-1].poll() is not None:
                log = (pod.workdir / "server.log").read_text()[-2000:]
                raise RuntimeError(f"server exited: {log}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{pod.name} not ready")

    def _mark_ready(self, pod: StandInPod) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kinds = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        status = {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "startTime": now,
            "conditions": [{"type": k, "status": "True", "lastTransitionTime": now} for k in kinds],
        }
        response = self._api.patch(
            f"/api/v1/namespaces/{self._namespace}/pods/{pod.name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code == 404:
            return  # deleted while booting
        response.raise_for_status()
        pod.ready = True

    def _update_targets(self) -> None:
        if self._prometheus is None:
            return
        targets = sorted(pod.address for pod in self.ready_pods())
        if targets != self._targets:
            self._targets = targets
            self._prometheus.set_targets(
                targets, job=f"pods-{self._namespace}", labels={"namespace": self._namespace}
            )


def _volume_dirs(pod: dict[str, Any], workdir: Path) -> dict[str, Path]:
    """mountPath -> a directory standing in for the volume (emptyDir semantics per pod)."""
    mounts: dict[str, Path] = {}
    containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    for container in containers:
        for mount in container.get("volumeMounts", []):
            directory = workdir / "volumes" / mount["name"]
            directory.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = directory
    workdir.mkdir(parents=True, exist_ok=True)
    return mounts


def _rewrite(arg: str, mounts: dict[str, Path]) -> str:
    for path in sorted(mounts, key=len, reverse=True):
        if arg == path or arg.startswith(path + "/"):
            return str(mounts[path]) + arg[len(path) :]
    return arg


def _prestop_sleep(pod: dict[str, Any]) -> float:
    container = pod["spec"]["containers"][0]
    sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    return float(sleep.get("seconds", 0))


def _kill(pod: StandInPod) -> None:
    pod.ready = False
    for process in pod.processes:
        if process.poll() is None:
            process.terminate()
    for process in pod.processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
