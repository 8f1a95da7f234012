"""Studio: the server-rendered pages where signed-in people work in rooms, watch calls and traces."""
