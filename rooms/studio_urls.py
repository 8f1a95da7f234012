from django.urls import path

from . import studio

urlpatterns = [
    path("", studio.index, name="studio-index"),
    path("studio/<slug:project>/<str:room>/", studio.room_page, name="studio-room"),
    path("favicon.ico", studio.favicon, name="favicon"),
]
