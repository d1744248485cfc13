"""The node's HTTP API: routes, problems, the OpenAPI document and the verification page."""
