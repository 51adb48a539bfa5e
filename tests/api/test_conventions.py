"""API conventions: error envelope, 400 vs 422, request ids, pagination, health probes."""

from __future__ import annotations


async def test_request_id_on_every_response(stack):
    """Every answer, success or error, authenticated or not, carries X-Request-Id."""
    async with stack.client(stack.tenant.test_key) as c:
        for method, path in (("GET", "/healthz"), ("GET", "/v1/workspace"), ("GET", "/nope"),
                             ("DELETE", "/v1/workspace")):
            r = await c.request(method, path)
            assert r.headers["x-request-id"].startswith("req_"), (path, r.headers)
        r = await c.get("/v1/workspace", headers={"X-Request-Id": "client-trace-123"})
        assert r.headers["x-request-id"] == "client-trace-123"


async def test_malformed_json_is_400_and_semantic_errors_are_422(stack):
    """Broken JSON and wrong types are 400; a value out of range or a missing field is 422 naming the field."""
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/profiles", content=b'{"name": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"
        assert r.json()["error"]["issues"][0]["code"] == "malformed_json"

        r = await c.post("/v1/profiles", json={"name": 42})
        assert r.status_code == 400 and r.json()["error"]["issues"][0]["field"] == "name"

        r = await c.post("/v1/profiles", json=["not", "an", "object"])
        assert r.status_code == 400

        r = await c.post("/v1/profiles", json={})
        assert r.status_code == 422
        assert r.json()["error"]["issues"][0] == {"field": "name", "code": "missing", "message": "Field required"}

        r = await c.post("/v1/profiles", json={"name": "x", "branding_primary_color": "red"})
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "branding_primary_color"

        r = await c.post("/v1/profiles", json={"name": "x", "surprise": 1})
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "surprise"

        r = await c.patch("/v1/workspace", json={"per_account_monthly_limit": 0})
        assert r.status_code == 422
        body = r.json()
        assert set(body) == {"error", "request_id"}
        assert set(body["error"]) == {"code", "normalized_code", "message", "issues"}


async def test_unknown_routes_and_methods_use_the_envelope(stack):
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.get("/v1/does-not-exist")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await c.put("/v1/workspace", json={})
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_cursor_pagination_walks_every_item_once(stack):
    """limit + cursor visit every profile exactly once, newest first; bad cursors and limits are refused."""
    async with stack.client(stack.tenant.test_key) as c:
        for i in range(7):
            assert (await c.post("/v1/profiles", json={"name": f"p{i}"})).status_code == 201
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            body = (await c.get("/v1/profiles", params=params)).json()
            seen += [p["name"] for p in body["data"]]
            pages += 1
            if not body["meta"]["has_more"]:
                assert body["meta"]["next_cursor"] is None
                break
            cursor = body["meta"]["next_cursor"]
        assert seen == [f"p{i}" for i in reversed(range(7))]
        assert pages == 3
        for bad in ({"cursor": "garbage!"}, {"cursor": "eyJ0IjoxfQ"}):
            r = await c.get("/v1/profiles", params=bad)
            assert r.status_code == 400 and r.json()["error"]["issues"][0]["field"] == "cursor"
        for bad, status in (({"limit": 0}, 422), ({"limit": 101}, 422), ({"limit": "ten"}, 400)):
            r = await c.get("/v1/profiles", params=bad)
            assert r.status_code == status, (bad, r.text)
            assert r.json()["error"]["issues"][0]["field"] == "limit"


async def test_health_probes(stack):
    """healthz needs nothing; readyz checks the database and Temporal."""
    async with stack.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        r = await c.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"] == {"database": "ok", "temporal": "ok"}
