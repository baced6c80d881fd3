"""The AOS version (shown by ``GET /api/health`` and in the OpenAPI document)."""

VERSION = "0.1.0"
