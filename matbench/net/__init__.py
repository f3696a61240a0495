"""The shared HTTP transport: one deadline per request, retries with Retry-After, an adaptive rate limit, an
endpoint pool, and API keys pinned to their origin. Model backends, search backends and downloads use it."""
