"""service.http.routes: one table, matched the same for both lanes; 404 and 405 worded from it."""

from __future__ import annotations

import pytest

from service.errors import MethodNotAllowed, NotFound
from service.http import quick, routes, views
from service.inference import HANDLERS, ModelRef


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "lane", "values"),
    [
        ("POST", "/v1/models/mnist:predict", "tfs_predict", routes.LOOP, {"name": "mnist"}),
        ("POST", "/v1/models/mnist/versions/2:classify", "tfs_classify", routes.LOOP, {"name": "mnist", "version": "2"}),
        ("POST", "/v1/models/mnist/labels/stable:regress", "tfs_regress", routes.LOOP, {"name": "mnist", "label": "stable"}),
        ("POST", "/v2/models/mnist/infer", "v2_infer", routes.LOOP, {"name": "mnist"}),
        ("POST", "/v2/models/mnist/versions/3/infer", "v2_infer", routes.LOOP, {"name": "mnist", "version": "3"}),
        ("POST", "/v1/models/mnist:evaluate", "tfs_evaluate", routes.FLASK, {"name": "mnist"}),
        ("POST", "/v1/models/mnist:explain", "tfs_unknown_verb", routes.FLASK, {"name": "mnist", "verb": "explain"}),
        ("GET", "/v1/models/mnist", "tfs_status", routes.QUICK, {"name": "mnist"}),
        ("HEAD", "/v1/models/mnist/metadata", "tfs_metadata", routes.FLASK, {"name": "mnist"}),
        ("GET", "/v2/models/mnist/versions/1/ready", "v2_model_ready", routes.QUICK, {"name": "mnist", "version": "1"}),
        ("GET", "/readyz", "ready", routes.QUICK, {}),
        ("GET", "/v2/health/live", "live", routes.QUICK, {}),
        ("GET", "/monitoring/prometheus/metrics", "metrics", routes.QUICK, {}),
    ],
)  # fmt: skip
def test_paths_match_their_endpoint_and_lane(
    method: str, path: str, endpoint: str, lane: str, values: dict[str, str]
) -> None:
    route, matched = routes.match(method, path)
    assert (route.endpoint, route.lane, dict(matched)) == (endpoint, lane, values)


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v1/models/mnist:predict", ":predict takes POST, not GET."),
        ("DELETE", "/v1/models/mnist", "/v1/models/mnist takes GET, not DELETE."),
        ("PUT", "/v2/models/mnist/infer", "/v2/models/mnist/infer takes POST, not PUT."),
        ("OPTIONS", "/v2/health/ready", "/v2/health/ready takes GET, not OPTIONS."),
    ],
)
def test_a_wrong_method_names_the_allowed_one(method: str, path: str, message: str) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        routes.match(method, path)
    assert caught.value.message == message


@pytest.mark.parametrize(
    "path", ["/v1/models//mnist:predict", "/v2/health/ready/", "/v1/models/a:b:predict", "/console"]
)
def test_unknown_paths_are_404s(path: str) -> None:
    with pytest.raises(NotFound, match="No route for GET"):
        routes.match("GET", path)


def test_every_endpoint_has_one_handler_in_its_lane() -> None:
    lanes = {routes.LOOP: HANDLERS, routes.QUICK: quick.HANDLERS, routes.FLASK: views.VIEWS}
    for route in routes.ROUTES:
        holders = [lane for lane, handlers in lanes.items() if route.endpoint in handlers]
        assert holders == [route.lane], route.endpoint
    assert set(HANDLERS) | set(quick.HANDLERS) | set(views.VIEWS) == set(routes.BY_ENDPOINT)


def test_probes_and_metrics_take_no_thread() -> None:
    for endpoint in ("live", "ready", "v2_model_ready", "tfs_status", "metrics"):
        assert routes.BY_ENDPOINT[endpoint].lane == routes.QUICK
        assert routes.BY_ENDPOINT[endpoint].methods == ("GET",)


def test_model_running_routes_are_metered_and_take_bodies() -> None:
    for route in routes.ROUTES:
        if route.lane == routes.LOOP:
            assert route.metric is not None and route.media_types and route.methods == ("POST",)


def test_model_refs_and_versions() -> None:
    assert routes.model_ref({"name": "m", "version": "12"}) == ModelRef("m", 12)
    assert routes.model_ref({"name": "m", "label": "stable"}) == ModelRef("m", None, "stable")
    with pytest.raises(NotFound, match="versions are positive integers"):
        routes.model_ref({"name": "m", "version": "v1"})
