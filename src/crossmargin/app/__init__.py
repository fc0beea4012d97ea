"""Use cases: the engine's single writer (load -> decide -> append -> evolve -> publish).

``model`` holds state, ``events`` the event vocabulary and ``evolve``, ``decide`` the command
handlers, ``liquidation`` the liquidation engine, ``writer`` the durable single writer.
"""
