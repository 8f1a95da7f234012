from django.urls import path

from .views import agents, auth, calls, rooms, traces, usage

# Project-wide pages sit under "-/", which no room name can be (names never start with '-').
urlpatterns = [
    path("", rooms.index, name="studio-index"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("studio/<slug:project>/-/calls/", calls.project_calls, name="studio-calls"),
    path("studio/<slug:project>/-/usage/", usage.project_usage, name="studio-usage"),
    path("studio/<slug:project>/-/traces/find/", traces.find_trace, name="studio-trace-find"),
    path("studio/<slug:project>/-/traces/<str:trace_id>/", traces.trace_page, name="studio-trace"),
    path("studio/<slug:project>/-/rooms/counts.json", rooms.room_counts, name="studio-room-counts"),
    path(
        "studio/<slug:project>/-/services/<slug:name>/enabled/",
        agents.set_service_enabled,
        name="studio-service-enabled",
    ),
    path("studio/<slug:project>/<str:room>/", rooms.room_page, name="studio-room"),
    path("studio/<slug:project>/<str:room>/agents/<str:name>/stop/", agents.stop_agent, name="studio-agent-stop"),
    path("studio/<slug:project>/<str:room>/calls/", calls.room_calls, name="studio-room-calls"),
    path("studio/<slug:project>/<str:room>/usage/", usage.room_usage, name="studio-room-usage"),
    path("favicon.ico", rooms.favicon, name="favicon"),
]
