"""The JSON contracts at the edges: what a portfolio looks like on the wire (in and out).

Above the core (which is the arithmetic alone) and beside the ledger and batch layers: the CLI,
the service and the distributed sources read portfolios through here, so a portfolio is
validated in one place, with every error naming its field path.
"""
