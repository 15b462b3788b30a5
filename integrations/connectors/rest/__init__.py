"""`rest`: a generic REST/JSON connector, configured entirely by typed settings.

It reads the common shapes of public REST APIs: items at any path of the
answer (a top-level array included), pagination by page number,
offset/limit, a cursor or a next URL in the body, or an RFC 8288 `Link`
header, ending on an empty page, a missing next or a total (body or header);
authentication none, API key in a header or the query, bearer, Basic,
credential headers, OAuth2 client credentials or refresh token; quick syncs
by an updated-since parameter or a vendor cursor; item rules that are empty
unless set. Vendor rate-limit headers pace the run (VendorHttp).

A vendor's shape written down once is a manifest (`connectors/manifests/`),
a connector of its own whose values are this connector's defaults.

The modules: `options` (the settings and credentials, typed, with help),
`auth` (keys, Basic, OAuth2 tokens and rotated refresh tokens), `paging`
(values at a path, where the next page is), `items` (a page's rows as
items, the item rules) and `connector` (requests, errors, discovery, pages). docs/CONNECTORS.md is the reference.
"""

from integrations.connectors.rest.connector import RestConnector, check_problem
from integrations.connectors.rest.paging import Pager, get_path

__all__ = ["Pager", "RestConnector", "check_problem", "get_path"]
