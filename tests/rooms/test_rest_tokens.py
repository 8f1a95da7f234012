import json

import pytest

from rooms.actions.projects import do_revoke_api_key
from rooms.models import ApiKey
from rooms.tokens import verify_token

pytestmark = pytest.mark.django_db


def post(client, body, key=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post("/api/v1/tokens", data=json.dumps(body), content_type="application/json", **headers)


def test_it_mints_a_token_for_the_keys_project(client, project, api_key):
    response = post(client, {"room": "lobby", "identity": "alice", "ttl": 120}, api_key)
    assert response.status_code == 201
    body = response.json()
    claims = verify_token(body["token"])
    assert (claims.project, claims.room, claims.identity) == ("acme", "lobby", "alice")
    assert body["ws_url"] == "ws://testserver/rooms/lobby/ws"


def test_it_stores_only_a_hash_of_the_key(project, api_key):
    stored = ApiKey.objects.get(project=project)
    assert api_key not in (stored.key_hash, stored.prefix)
    assert api_key.startswith(stored.prefix)


def test_it_requires_a_key(client, project):
    response = post(client, {"room": "lobby", "identity": "alice"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


def test_it_refuses_a_revoked_key(client, project, api_key):
    do_revoke_api_key(ApiKey.objects.get(project=project))
    assert post(client, {"room": "lobby", "identity": "alice"}, api_key).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"identity": "alice"}, "'room' and 'identity' are required"),
        ({"room": "lobby", "identity": "alice", "role": "root"}, "role must be one of"),
        ({"room": "lobby", "identity": "alice", "ttl": "soon"}, "'ttl' must be an integer"),
        ({"room": "lobby", "identity": "alice", "grants": {"nope": True}}, "unknown grant"),
    ],
)
def test_it_explains_bad_requests(client, project, api_key, body, message):
    response = post(client, body, api_key)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_it_refuses_a_body_that_is_not_json(client, project, api_key):
    response = client.post(
        "/api/v1/tokens", data="{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_json"


def test_it_lists_rooms_with_pagination(client, project, api_key):
    project.rooms.create(name="lobby")
    response = client.get("/api/v1/rooms", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert response.status_code == 200
    assert response.json() == {
        "rooms": [{"name": "lobby", "participants": 0, "created_at": response.json()["rooms"][0]["created_at"]}],
        "page": 1,
        "pages": 1,
    }
