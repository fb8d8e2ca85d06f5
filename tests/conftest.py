"""Shared by every test: this folder is on ``sys.path`` (pytest puts a conftest's folder
there), so helpers such as :mod:`anchor_scene` are imported by name from any test."""
