from coalmine.k8s import ObjectRef
from coalmine.k8s.children import deployment_observation


def _deployment(
    generation: int, observed: int, replicas: int, updated: int, ready: int, pods: int | None = None
):
    return {
        "metadata": {"generation": generation, "labels": {"coalmine.dev/revision": "abc"}},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "replicas": updated if pods is None else pods,
        },
    }


def test_missing_deployment_is_none():
    assert deployment_observation(None) is None


def test_rolled_out_deployment_is_updated():
    seen = deployment_observation(_deployment(3, 3, 2, 2, 2))
    assert seen is not None
    assert (seen.revision, seen.replicas, seen.ready_replicas, seen.updated) == ("abc", 2, 2, True)
    assert seen.ready_on("abc")


def test_unseen_generation_is_not_updated_even_if_counts_match():
    # The controller has not looked at the new template yet: its counts describe the old one.
    seen = deployment_observation(_deployment(4, 3, 2, 2, 2))
    assert seen is not None and not seen.updated


def test_an_old_template_pod_left_is_not_updated_even_if_it_makes_the_ready_count():
    # A 1-replica canary switched to a new revision: the new pod is created (updated 1) but not
    # ready, the old one still is (ready 1, 2 pods in all). Not ready on the new revision.
    surging = deployment_observation(_deployment(2, 2, 1, 1, 1, pods=2))
    assert surging is not None and not surging.updated and not surging.ready_on("abc")
    finished = deployment_observation(_deployment(2, 2, 1, 1, 1, pods=1))
    assert finished is not None and finished.ready_on("abc")


def test_status_missing_counts_as_nothing_ready():
    seen = deployment_observation({"metadata": {"generation": 1}, "spec": {"replicas": 1}})
    assert seen is not None
    assert (seen.revision, seen.ready_replicas, seen.updated) == (None, 0, False)


def test_object_paths():
    ref = ObjectRef("Deployment", "ns", "iris-canary")
    assert ref.path("scale") == "/apis/apps/v1/namespaces/ns/deployments/iris-canary/scale"
    md = ObjectRef("ModelDeployment", "ns", "iris")
    assert (
        md.path("status")
        == "/apis/coalmine.dev/v1alpha1/namespaces/ns/modeldeployments/iris/status"
    )
    route = ObjectRef("HTTPRoute", "ns", "iris")
    assert route.path() == "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/iris"
