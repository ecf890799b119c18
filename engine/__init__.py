"""ivuscal engine: the runtime stages decode -> polar -> ensemble -> filter -> quantify."""

__version__ = "0.1.0"
