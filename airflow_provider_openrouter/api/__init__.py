"""The OpenRouter API layer: HTTP client, retries, pacing, endpoints, validation."""
