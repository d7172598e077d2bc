"""Flask extensions of the node, created unbound and attached in ``create_app``."""

from corridor.flaskdb import Database

db = Database()
