from django.urls import path

from .consumers import RoomConsumer

websocket_urlpatterns = [
    path("rooms/<str:room>/ws", RoomConsumer.as_asgi()),
]
