"""The routing core: one `Node` per server process (per event loop) holding its live sessions.

Calls between two sessions of the same node never leave the process; calls to a session on another
node go straight to that node over the bus (Redis pub/sub), never through per-connection channels.
Room events (presence, toolkits, broadcasts) travel over the Channels layer, one group per room
that each node joins once. See docs/architecture.md.
"""
