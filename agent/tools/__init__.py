"""Tools the agent can call, in families (`families.py`); nothing here imports a family until a session asks."""
