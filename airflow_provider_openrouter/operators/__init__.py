"""Operators of the OpenRouter provider."""
