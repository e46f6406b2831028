"""Persistence: peewee models, database set-up and explicit migrations."""
