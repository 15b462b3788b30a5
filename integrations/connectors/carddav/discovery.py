"""Finding the address books: /.well-known/carddav, the principal, the home set and the selected books."""

import logging
from urllib.parse import urlsplit

from integrations.connectors import errors
from integrations.connectors.base import VendorAccount
from integrations.connectors.carddav.dav import (
    DISPLAYNAME,
    RESOURCETYPE,
    DavResponse,
    carddav_tag,
    dav_tag,
    last_segment,
    parse_multistatus,
    propfind_body,
)

logger = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/carddav"
DISCOVERY_PROPS = ["<D:current-user-principal/>", "<C:addressbook-home-set/>", RESOURCETYPE, DISPLAYNAME]


class DiscoveryMixin:
    """The discovery part of CardDavConnector.

    It relies on the connector's HTTP helpers (request, propfind, absolute,
    path_of), `base_url`, `origin`, `settings` and `credentials`.
    """

    def discover_books(self):
        """Every address book of the user: [VendorAccount(path, display name)]."""
        first, answered_at = self.starting_point()
        if carddav_tag("addressbook") in first.types:
            return [self.account(first)]
        home = first.props.get(carddav_tag("addressbook-home-set"))
        if not home:
            principal = first.props.get(dav_tag("current-user-principal"))
            if not principal:
                raise errors.BadResponse(
                    f"The server at {self.base_url} does not say who the user is "
                    "(no DAV:current-user-principal): is it a CardDAV server?"
                )
            answer = self.propfind(
                self.absolute(principal, answered_at),
                ["<C:addressbook-home-set/>"],
                depth=0,
                what="the user's principal",
            )
            home = answer[0].props.get(carddav_tag("addressbook-home-set")) if answer else ""
            if not home:
                raise errors.BadResponse(
                    f"The user's principal {principal} names no address book home "
                    "(CARDDAV:addressbook-home-set)."
                )
            answered_at = self.absolute(principal, answered_at)
        members = self.propfind(
            self.absolute(home, answered_at),
            [RESOURCETYPE, DISPLAYNAME],
            depth=1,
            what="the address book home",
        )
        return [self.account(m) for m in members if carddav_tag("addressbook") in m.types]

    def starting_point(self):
        """(the first DAV:response of discovery, the URL that gave it).

        For a bare server root, RFC 6764's /.well-known/carddav comes first
        (its redirects within the origin are followed); the server URL itself
        when that leads nowhere.
        """
        if urlsplit(self.base_url).path in ("", "/"):
            found = self.well_known()
            if found is not None:
                return found
        found = self.propfind(
            self.base_url,
            DISCOVERY_PROPS,
            depth=0,
            what="the server URL",
            missing=f"Nothing answers at {self.base_url} (404): check the server URL.",
        )
        return (found[0] if found else DavResponse(self.base_url)), self.base_url

    def well_known(self):
        """(first DAV:response, URL) of a PROPFIND on /.well-known/carddav, or None when it names no user."""
        url = self.origin + WELL_KNOWN
        try:
            response = self.request("PROPFIND", url, body=propfind_body(DISCOVERY_PROPS), depth=0)
            if response.status_code != 207:
                return None
            found, _, _ = parse_multistatus(response.content, WELL_KNOWN)
        except (errors.BadResponse, errors.DestinationRefused, errors.Unavailable) as exc:
            # A redirect to another site (the credentials stay here), an answer
            # that is not WebDAV or an error answer: the server URL is asked
            # instead. A server that does not answer at all fails there too.
            if isinstance(exc, errors.Unavailable) and exc.status is None:
                raise
            logger.info("%s of %s led nowhere: %s", WELL_KNOWN, self.origin, exc)
            return None
        first = found[0] if found else DavResponse(url)
        named = (carddav_tag("addressbook-home-set"), dav_tag("current-user-principal"))
        if carddav_tag("addressbook") not in first.types and not any(first.props.get(k) for k in named):
            return None
        return first, response.url or url

    def account(self, response):
        path = self.path_of(response.href)
        return VendorAccount(path, response.props.get(dav_tag("displayname")) or last_segment(path))

    def selected_books(self):
        """The address books this integration syncs, per its `addressbook` setting."""
        wanted = str(self.settings.get("addressbook") or "").strip()
        if wanted.startswith(("/", "http://", "https://")):
            path = self.path_of(wanted)
            return [VendorAccount(path if path.endswith("/") else path + "/", "")]
        books = self.discover_books()
        if not books:
            # Syncing nothing would read as "every contact was deleted".
            user = self.credentials.get("username")
            raise errors.BadResponse(
                f"The CardDAV server lists no address book for {user!r}."
                if user
                else f"The CardDAV server at {self.base_url} lists no address book."
            )
        if not wanted:
            return books
        folded = wanted.casefold()
        matches = [b for b in books if b.name.casefold() == folded] or [
            b for b in books if last_segment(b.id).casefold() == folded
        ]
        if not matches:
            names = ", ".join(repr(b.name) for b in books) or "none"
            raise errors.BadResponse(
                f"The user has no address book named {wanted!r} (404); their address books: {names}. "
                "Check the integration's 'addressbook' setting.",
                status=404,
            )
        return matches
