from django.urls import path

from .api import views

urlpatterns = [
    path("api/v1/tokens", views.create_token, name="api-create-token"),
    path("api/v1/rooms", views.list_rooms, name="api-list-rooms"),
    path("api/v1/health", views.health, name="api-health"),
]
