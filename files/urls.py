from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/rooms/<str:room>/files/", views.file_endpoint, name="api-room-files"),
    path("api/v1/rooms/<str:room>/files/<path:path>", views.file_endpoint, name="api-room-file"),
]
