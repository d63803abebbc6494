"""The official Python `kubernetes` client against a running Hortator.

Usage: python3 client_check.py KUBECONFIG
Exits non-zero with a message on the first mismatch.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system", "kube-node-lease"} <= names, names

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
        # No scheduler serves "manual": its status writes would add watch events
        # to the exact sequence asserted below.
        spec=client.V1PodSpec(
            scheduler_name="manual",
            containers=[client.V1Container(name="c", image="busybox")],
        ),
    )
    created = core.create_namespaced_pod("default", pod)
    assert created.metadata.uid, created
    assert created.status.phase == "Pending", created.status

    events = []
    start_rv = created.metadata.resource_version

    def watch_pods():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, "default", label_selector="app=py",
                              resource_version=start_rv, timeout_seconds=20):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=watch_pods)
    t.start()

    patched = core.patch_namespaced_pod("py", "default", {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels["extra"] == "yes", patched.metadata.labels

    listed = core.list_namespaced_pod("default", label_selector="app in (py),extra")
    assert [p.metadata.name for p in listed.items] == ["py"], listed.items

    try:
        core.read_namespaced_pod("missing", "default")
        raise AssertionError("expected 404")
    except ApiException as e:
        assert e.status == 404, e

    stale = created
    stale.metadata.labels["x"] = "y"
    try:
        core.replace_namespaced_pod("py", "default", stale)
        raise AssertionError("expected 409 on a stale resourceVersion")
    except ApiException as e:
        assert e.status == 409, e

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyd"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "pyd"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pyd"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("default", dep)
    scale = apps.read_namespaced_deployment_scale("pyd", "default")
    assert scale.spec.replicas == 2, scale
    apps.patch_namespaced_deployment_scale("pyd", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("pyd", "default").spec.replicas == 3

    core.delete_namespaced_pod("py", "default")
    t.join(timeout=30)
    kinds = [k for k, _ in events]
    assert kinds == ["MODIFIED", "DELETED"], events
    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
