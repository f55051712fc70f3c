"""Local HTTP servers that speak the formats of services tests cannot reach (Slack, ...)."""
