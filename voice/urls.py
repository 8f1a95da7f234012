from django.urls import path

from . import views

urlpatterns = [
    path("studio/<slug:project>/<str:room>/voice/start", views.start_voice, name="voice-start"),
]
