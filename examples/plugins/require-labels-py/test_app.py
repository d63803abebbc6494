"""Unit tests of app.py's logic, run with CPython (see README.md)."""

import json
import unittest

from componentize_py_types import Err
from wit_world.imports.admission_types import AdmissionRequest, Operation, UserInfo
from wit_world.imports.types import GroupVersionResource

import app


def request(operation, group, resource, obj, sub_resource=""):
    return AdmissionRequest(
        uid="1",
        operation=operation,
        resource=GroupVersionResource(group=group, version="v1", resource=resource),
        sub_resource=sub_resource,
        kind="",
        namespace="default",
        name="x",
        user_info=UserInfo(username="admin", uid="", groups=[]),
        object=None if obj is None else json.dumps(obj),
        old_object=None,
        dry_run=False,
    )


def pod(labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "labels": labels}}


def plugin(config):
    return app.Config.parse(json.dumps(config))


class RequireLabelsTest(unittest.TestCase):
    def test_metadata(self):
        meta = app.WitWorld().metadata()
        self.assertEqual(
            (meta.name, meta.version, meta.sdk_version),
            ("require-labels-py", "0.1.0", "0.1.0"),
        )

    def test_defaults(self):
        for text in ["", "{}", '{"labels": ["app"]}']:
            config = app.Config.parse(text)
            self.assertEqual(config.labels, ["app"])
            self.assertEqual(
                config.resources,
                ["pods", "replicationcontrollers", "services", "deployments"],
            )

    def test_denies_missing_labels_in_configuration_order(self):
        config = plugin({"labels": ["app", "team", "tier"], "resources": ["pods"]})
        response = config.admit(request(Operation.CREATE, "", "pods", pod({"tier": "web"})))
        self.assertFalse(response.allowed)
        self.assertEqual(response.code, 403)
        self.assertEqual(response.reason, "missing required label(s): app, team")
        response = config.admit(
            request(Operation.UPDATE, "", "pods", pod({"team": "a", "tier": "web"}))
        )
        self.assertEqual(
            (response.allowed, response.reason), (False, "missing required label(s): app")
        )

    def test_allows_labelled_objects(self):
        config = plugin({"labels": ["app", "team"]})
        labels = {"app": "web", "team": "", "extra": "1"}
        for group, resource in [
            ("", "pods"),
            ("", "services"),
            ("", "replicationcontrollers"),
            ("apps", "deployments"),
        ]:
            obj = {"metadata": {"name": "x", "labels": labels}}
            response = config.admit(request(Operation.CREATE, group, resource, obj))
            self.assertTrue(response.allowed, resource)

    def test_objects_without_labels_miss_them_all(self):
        config = plugin({"labels": ["app", "team"]})
        for obj in [{"metadata": {"name": "x"}}, {"metadata": {"labels": None}}, {}, []]:
            response = config.admit(request(Operation.CREATE, "apps", "deployments", obj))
            self.assertEqual(response.reason, "missing required label(s): app, team")

    def test_ignores_other_requests(self):
        config = plugin({"resources": ["pods"]})
        unlabelled = pod({})
        self.assertTrue(config.admit(request(Operation.CREATE, "", "services", unlabelled)).allowed)
        for operation in [Operation.DELETE, Operation.CONNECT]:
            self.assertTrue(config.admit(request(operation, "", "pods", unlabelled)).allowed)
        status = request(Operation.UPDATE, "", "pods", unlabelled, sub_resource="status")
        self.assertTrue(config.admit(status).allowed)

    def test_undecodable_object_is_a_bad_request(self):
        broken = request(Operation.CREATE, "", "pods", {})
        broken.object = "{not json"
        response = plugin({}).admit(broken)
        self.assertEqual((response.allowed, response.code), (False, 400))
        missing = request(Operation.CREATE, "", "pods", None)
        self.assertEqual(plugin({}).admit(missing).reason, "the request has no object")

    def test_bad_configuration_is_refused(self):
        for config, message in [
            ({"labels": "app"}, 'require-labels: labels must be a list of non-empty strings, not "app"'),
            ({"labels": ["app", 7]}, 'require-labels: labels must be a list of non-empty strings, not ["app",7]'),
            ({"resources": [""]}, 'require-labels: resources must be a list of non-empty strings, not [""]'),
            ({"lables": ["app"]}, 'require-labels: unknown configuration key "lables" (expected "labels" and/or "resources")'),
            (["app"], 'require-labels: the configuration must be a table, not ["app"]'),
        ]:
            with self.assertRaises(Err) as raised:
                app.WitWorld().init(json.dumps(config))
            self.assertEqual(raised.exception.value, message)

    def test_init_then_admit(self):
        world = app.WitWorld()
        world.init('{"labels": ["app", "team"], "resources": ["pods"]}')
        response = world.admit(request(Operation.CREATE, "", "pods", pod({"team": "a"})))
        self.assertEqual(response.reason, "missing required label(s): app")


if __name__ == "__main__":
    unittest.main()
