"""require-labels-py: the require-labels admission plugin, in Python.

The same policy as examples/plugins/require-labels (Rust), with the same
messages: on create and update of the configured resources (not of a
subresource), objects lacking any configured label in metadata.labels are
denied with code 403 and the reason `missing required label(s): app, team`
(the missing labels in configuration order).

Configuration (the plugin's `config` table in hortator.toml, as JSON):

* labels: label keys every object must carry (default ["app"]);
* resources: plural resource names to check, in any API group (default
  ["pods", "replicationcontrollers", "services", "deployments"]).

Built into a component of the `admission` world of sdk/wit with
componentize-py; see README.md.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.admission_types import (
    AdmissionRequest,
    AdmissionResponse,
    Operation,
)
from wit_world.imports.types import PluginMetadata

NAME = "require-labels-py"
VERSION = "0.1.0"
# The version of the hortator:plugin WIT package this plugin is built against.
SDK_VERSION = "0.1.0"

DEFAULT_LABELS = ["app"]
DEFAULT_RESOURCES = ["pods", "replicationcontrollers", "services", "deployments"]


def _compact(value):
    """A value as compact JSON, as the Rust plugin prints it in messages."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Config:
    """The parsed configuration."""

    def __init__(self, labels, resources):
        self.labels = labels
        self.resources = resources

    @staticmethod
    def parse(text):
        """Parses the configuration text `init` receives; raises ValueError."""
        if not text.strip():
            table = {}
        else:
            try:
                table = json.loads(text)
            except ValueError as error:
                raise ValueError(f"invalid plugin configuration: {error}") from None
        if not isinstance(table, dict):
            raise ValueError(
                f"require-labels: the configuration must be a table, not {_compact(table)}"
            )
        for key in table:
            if key not in ("labels", "resources"):
                raise ValueError(
                    f"require-labels: unknown configuration key {json.dumps(key)} "
                    '(expected "labels" and/or "resources")'
                )
        return Config(
            _string_list(table, "labels", DEFAULT_LABELS),
            _string_list(table, "resources", DEFAULT_RESOURCES),
        )

    def applies_to(self, request):
        """Whether a request is checked: a create or update of a configured
        resource itself (not of a subresource)."""
        return (
            request.operation in (Operation.CREATE, Operation.UPDATE)
            and request.sub_resource == ""
            and request.resource.resource in self.resources
        )

    def missing(self, labels):
        """The configured labels absent from `labels` (a dict or None), in
        configuration order."""
        present = labels if isinstance(labels, dict) else {}
        return [key for key in self.labels if key not in present]

    def admit(self, request):
        """The verdict on one request."""
        if not self.applies_to(request):
            return allow()
        if request.object is None:
            return deny("the request has no object", 400)
        try:
            obj = json.loads(request.object)
        except ValueError as error:
            return deny(f"cannot decode the request's object: {error}", 400)
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        labels = metadata.get("labels") if isinstance(metadata, dict) else None
        missing = self.missing(labels)
        if missing:
            return deny("missing required label(s): " + ", ".join(missing))
        return allow()


def _string_list(table, key, default):
    """The list of non-empty strings under `key`, or `default` if absent."""
    if key not in table:
        return list(default)
    value = table[key]
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ValueError(
            f"require-labels: {key} must be a list of non-empty strings, not {_compact(value)}"
        )
    return list(value)


def allow():
    return AdmissionResponse(allowed=True, reason="", code=0, patch=None, warnings=[])


def deny(reason, code=403):
    return AdmissionResponse(
        allowed=False, reason=reason, code=code, patch=None, warnings=[]
    )


# The configuration `init` accepted. Kept at module level: the component's
# Python interpreter lives as long as the plugin instance.
_config = None


class WitWorld(wit_world.WitWorld):
    """The exports of the `admission` world."""

    def metadata(self) -> PluginMetadata:
        return PluginMetadata(name=NAME, version=VERSION, sdk_version=SDK_VERSION)

    def init(self, config: str) -> None:
        global _config
        try:
            _config = Config.parse(config)
        except ValueError as error:
            # A WIT `result<_, string>` error is raised as Err(value).
            raise Err(str(error))

    def admit(self, request: AdmissionRequest) -> AdmissionResponse:
        if _config is None:
            # The host never calls admit before init succeeded.
            raise RuntimeError("require-labels-py called before init succeeded")
        return _config.admit(request)
