"""``crossmargin serve``: the engine over HTTP and WebSocket, with access control and a dashboard.

Thin by design: a handler parses the request, hands a command or a query to the engine host (one
thread owns the engine; commands are serialised through one asyncio queue and group-committed),
and renders the result. Nothing here computes margin: reports come from ``contract.portfolio``.
"""
