"""A node's room cache: a stale snapshot plus the event stream equals a fresh snapshot."""

from rooms.actions.participants import do_join, do_leave, do_set_attributes
from rooms.actions.toolkits import do_register_toolkit, do_unregister_toolkit
from rooms.events import collect_room_events
from rooms.mesh.state import RoomState
from rooms.models import Room
from rooms.selectors import load_room_snapshot
from rooms.tokens import mint_token, verify_token
from tests.support.peer import ADD_TOOL
from toolkits.schema import parse_toolkit_definition


def claims(identity: str, role: str = "user", singleton: bool = False):
    return verify_token(mint_token(project="acme", room="lobby", identity=identity, role=role, singleton=singleton)[0])


def snapshot_state(room: Room) -> RoomState:
    state = RoomState(room.pk)
    participants, toolkits = load_room_snapshot(room.pk)
    state.reset(participants, toolkits, "node-x")
    return state


def view(state: RoomState) -> tuple:
    return (
        state.participants,
        state.nodes,
        {key: entry.record for key, entry in state.hosted.items()},
        {name: entry.host_id for name, entry in state.public.items()},
    )


def test_applying_the_event_stream_to_a_stale_snapshot_equals_a_fresh_snapshot(project):
    room = Room.objects.create(project=project, name="lobby")
    alice = do_join(room, claims("alice", singleton=True), "node-a")
    stale = snapshot_state(room)
    calc = parse_toolkit_definition({"name": "calc", "tools": [ADD_TOOL]})
    ui = parse_toolkit_definition({"name": "ui", "public": False, "tools": [ADD_TOOL]})
    with collect_room_events() as events:
        bob = do_join(room, claims("bob", "agent"), "node-b")
        do_register_toolkit(bob.id, calc)
        do_register_toolkit(bob.id, ui)
        do_set_attributes(alice.id, {"status": "busy"}, 1000)
        carol = do_join(room, claims("carol"), "node-a")
        do_register_toolkit(carol.id, ui)
        do_leave(carol.id, "disconnected")
        do_join(room, claims("alice", singleton=True), "node-c")  # replaces the first alice
        do_unregister_toolkit(bob.id, "ui")
    assert [e["method"] for e in events].count("participant.left") == 2
    for event in events:
        stale.apply(event)
    assert view(stale) == view(snapshot_state(room))


def test_replaying_events_twice_changes_nothing(project):
    room = Room.objects.create(project=project, name="lobby")
    stale = snapshot_state(room)
    with collect_room_events() as events:
        bob = do_join(room, claims("bob"), "node-b")
        do_register_toolkit(bob.id, parse_toolkit_definition({"name": "calc", "tools": [ADD_TOOL]}))
    for event in events + events:
        stale.apply(event)
    assert view(stale) == view(snapshot_state(room))


def test_the_room_snapshot_takes_two_queries(project, django_assert_num_queries):
    room = Room.objects.create(project=project, name="lobby")
    for identity in ("alice", "bob", "carol"):
        participant = do_join(room, claims(identity), "node-a")
        do_register_toolkit(participant.id, parse_toolkit_definition({"name": f"kit-{identity}", "tools": [ADD_TOOL]}))
    with django_assert_num_queries(2):
        participants, toolkits = load_room_snapshot(room.pk)
    assert len(participants) == 3 and len(toolkits) == 3
