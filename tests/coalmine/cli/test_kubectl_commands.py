"""``kubectl coalmine`` commands over an in-memory ``UserApi``: output, patches, exit codes.

The fake stands at ``coalmine.k8s``'s protocol, so the wording of API errors is exercised too.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from coalmine.cli.cluster import NO_CLUSTER, CliError, Cluster
from coalmine.cli.kubectl import Deps, cli
from coalmine.k8s import ForbiddenError, KindNotServedError
from tests.coalmine.cli.fakes import FakeUserApi
from tests.coalmine.cli.samples import NOW, events, progressing, rolled_back
from tests.coalmine.cli.test_render import PROGRESSING_PAGE


@pytest.fixture
def cluster() -> FakeUserApi:
    return FakeUserApi(objects={"iris": progressing(), "old": rolled_back()}, event_list=events())


def run(cluster: FakeUserApi, *args: str, sleep: Any = None, now: Any = None) -> Result:
    seen: list[tuple[str | None, str | None, str | None]] = []

    def connect(kubeconfig: str | None, context: str | None, ns: str | None) -> Cluster:
        seen.append((kubeconfig, context, ns))
        return Cluster(cluster, ns or cluster.namespace)  # no -n: the context's namespace

    deps = Deps(connect=connect, now=now or (lambda: NOW), sleep=sleep or (lambda _: None))
    return CliRunner().invoke(cli, list(args), obj=deps)


def test_status_prints_the_page(cluster: FakeUserApi) -> None:
    result = run(cluster, "status", "iris", "-n", "ml")

    assert result.exit_code == 0, result.output
    assert result.output == PROGRESSING_PAGE


def test_status_without_event_permission_still_shows_the_rollout(cluster: FakeUserApi) -> None:
    cluster.fail_events = ForbiddenError(403, "no list on events")

    result = run(cluster, "status", "iris")

    assert result.exit_code == 0
    assert "Events: not shown (no permission to list events in this namespace)" in result.output


def test_watch_prints_a_page_per_change_until_interrupted(cluster: FakeUserApi) -> None:
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 2:  # the operator moves on between two refreshes
            cluster.objects["iris"]["metadata"]["resourceVersion"] = "5200"
            cluster.objects["iris"]["status"]["weight"] = 60
        if len(ticks) == 4:
            raise KeyboardInterrupt

    result = run(cluster, "status", "iris", "--watch", "--interval", "0.5", sleep=sleep)

    assert result.exit_code == 0
    assert ticks == [0.5] * 4
    # Not a terminal: four refreshes, but only two distinct states are printed.
    assert result.output.count("--- 2026-11-27T05:30:00Z") == 2
    assert "Weight:     60% of traffic on the canary" in result.output


@pytest.mark.parametrize(
    ("args", "annotation"),
    [
        (["promote", "iris"], "coalmine.dev/promote"),
        (["promote", "iris", "--full"], "coalmine.dev/promote-full"),
        (["abort", "iris"], "coalmine.dev/abort"),
        (["retry", "old"], "coalmine.dev/retry"),
        (["rotate-keys", "old"], "coalmine.dev/rotate-keys"),  # in any phase
    ],
)
def test_controls_set_their_annotation(
    cluster: FakeUserApi, args: list[str], annotation: str
) -> None:
    result = run(cluster, *args)

    assert result.exit_code == 0, result.output
    name = args[1]
    assert cluster.patches == [
        (name, {"metadata": {"annotations": {annotation: "2026-11-27T05:30:00Z"}}})
    ]
    assert result.output.startswith(f"{args[0]}{' --full' if '--full' in args else ''} requested")
    assert f"ml/{name} at 2026-11-27T05:30:00Z" in result.output


def test_promote_without_a_canary_is_refused_and_patches_nothing(cluster: FakeUserApi) -> None:
    result = run(cluster, "promote", "old")

    assert result.exit_code == 1
    assert cluster.patches == []
    assert result.output == (
        "error: nothing to promote: old has no canary in progress (phase Degraded)"
        " (use --force to request it anyway)\n"
    )


def test_force_requests_it_anyway(cluster: FakeUserApi) -> None:
    result = run(cluster, "abort", "old", "--force")

    assert result.exit_code == 0
    assert [name for name, _ in cluster.patches] == ["old"]


def test_pause_then_resume_patch_spec_paused_once_each(cluster: FakeUserApi) -> None:
    outputs = [run(cluster, verb, "iris").output for verb in ("pause", "pause", "resume")]

    assert outputs == [
        "ml/iris paused (spec.paused: true)\n",
        "ml/iris is already paused (spec.paused: true)\n",
        "ml/iris resumed (spec.paused: false)\n",
    ]
    assert cluster.patches == [
        ("iris", {"spec": {"paused": True}}),
        ("iris", {"spec": {"paused": False}}),
    ]


def test_history_prints_outcomes(cluster: FakeUserApi) -> None:
    result = run(cluster, "history", "old")

    assert result.exit_code == 0
    assert "c4d5e6f7a8   v3        RolledBack" in result.output


def test_missing_object_exits_3_with_a_hint(cluster: FakeUserApi) -> None:
    result = run(cluster, "status", "nope")

    assert result.exit_code == 3
    assert result.output == (
        "error: ModelDeployment 'nope' not found in namespace 'ml' "
        "(try -n NAMESPACE, or `kubectl get mdeploy -A`)\n"
    )


def test_a_cluster_without_the_crd_exits_3_saying_to_install_it(cluster: FakeUserApi) -> None:
    cluster.fail_read = KindNotServedError(404, "Not Found")

    result = run(cluster, "status", "iris")

    assert result.exit_code == 3
    assert result.output == (
        "error: this cluster does not serve modeldeployments.coalmine.dev: install the coalmine "
        "CRD (helm install charts/coalmine, or kubectl apply -f crds/)\n"
    )


def test_forbidden_patch_exits_4_naming_the_missing_verb(cluster: FakeUserApi) -> None:
    cluster.fail_patch = ForbiddenError(403, "denied")

    result = run(cluster, "abort", "iris")

    assert result.exit_code == 4
    assert result.output.startswith(
        "error: forbidden: you may not patch modeldeployments.coalmine.dev in namespace 'ml' "
        "(missing RBAC verb 'patch' on 'modeldeployments.coalmine.dev'); "
        "the documented role for people is examples/rbac-user.yaml"
    )
    assert result.output.endswith("Server said: denied\n")


def test_no_cluster_exits_5() -> None:
    def connect(*_: str | None) -> Cluster:
        raise CliError("no usable kubeconfig: nothing at ~/.kube/config", NO_CLUSTER)

    result = CliRunner().invoke(cli, ["status", "iris"], obj=Deps(connect=connect))

    assert result.exit_code == 5
    assert result.output == "error: no usable kubeconfig: nothing at ~/.kube/config\n"


def test_cluster_options_reach_the_connection(cluster: FakeUserApi) -> None:
    seen: list[tuple[str | None, ...]] = []

    def connect(*where: str | None) -> Cluster:
        seen.append(where)
        return cluster

    args = ["history", "iris", "--kubeconfig", "/k", "--context", "dev", "-n", "ml"]
    CliRunner().invoke(cli, args, obj=Deps(connect=connect, now=lambda: NOW))

    assert seen == [("/k", "dev", "ml")]


def test_unknown_command_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["rollback", "iris"]).exit_code == 2


def test_the_namespace_option_reaches_the_request(cluster: FakeUserApi) -> None:
    result = run(cluster, "status", "iris", "-n", "other")

    assert result.exit_code == 3
    assert "'iris' not found in namespace 'other'" in result.output
