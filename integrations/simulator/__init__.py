"""The vendor simulator: a standalone HTTP server imitating a SaaS vendor's
paginated JSON API, with faults chosen per account. Used by the demo and the
tests; it imports nothing from Django."""
