"""Typed connector errors; each maps to one code of the error catalog."""


class ConnectorError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message, *, status=None, retry_after=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class AuthExpired(ConnectorError):
    code = "AUTH_EXPIRED"


class AuthInvalid(ConnectorError):
    code = "AUTH_INVALID"


class Forbidden(ConnectorError):
    code = "AUTH_FORBIDDEN"


class RateLimited(ConnectorError):
    code = "RATE_LIMITED"


class Unavailable(ConnectorError):
    code = "VENDOR_UNAVAILABLE"


class VendorTimeout(ConnectorError):
    code = "VENDOR_TIMEOUT"


class BadResponse(ConnectorError):
    code = "VENDOR_BAD_RESPONSE"


class ConfigurationError(ConnectorError):
    """The integration's settings or credentials are not usable as given."""

    code = "AUTH_INVALID"


class DestinationRefused(ConnectorError):
    """The outbound policy refused the address, or a redirect would take credentials elsewhere."""

    code = "DESTINATION_REFUSED"


class TlsCertificateInvalid(ConnectorError):
    """The vendor's TLS certificate could not be verified, or the CA certificate in the settings is unusable."""

    code = "VENDOR_TLS_INVALID"
