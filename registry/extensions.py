"""Flask extensions of the registry, created unbound and attached in ``create_app``."""

from corridor.flaskdb import Database

db = Database()
