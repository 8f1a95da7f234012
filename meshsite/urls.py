from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("rooms.urls")),
    path("", include("files.urls")),
    path("", include("mail.urls")),
    path("", include("voice.urls")),
    path("", include("observability.proxy.urls")),
    path("", include("rooms.studio_urls")),
]
