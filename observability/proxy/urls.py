"""The metering proxy's routes: the OpenAI API's paths under `/v1/`, so a client's base URL is
`https://<meshsite>/v1`."""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^v1/(?P<route>chat/completions|embeddings|models)/?$", views.proxy, name="proxy"),
]
