"""Leaf utilities shared by every layer; imports nothing from the project."""
