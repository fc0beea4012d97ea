"""Simulation on top of the core and the engine: scenarios, the worked demo, backtests."""
