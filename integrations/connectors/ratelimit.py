"""How long a vendor's answer asks us to hold the next request: its rate-limit headers, read.

Pure functions over an answer's headers; `VendorHttp` decides what to do with
the pause (wait before the next request, or give up). Read, longest pause
first:

- `Retry-After` on any answer: seconds, or an HTTP date.
- A remaining/reset pair: `X-RateLimit-Remaining` / `X-RateLimit-Reset` by
  default, or the names a connector declares (`{"remaining": ..., "reset": ...}`),
  and the IETF draft's separate `RateLimit-Remaining` / `RateLimit-Reset`.
- The IETF draft's combined field: `RateLimit: limit=100, remaining=0, reset=30`
  (drafts -03 to -06), or the structured form `RateLimit: "default";r=0;t=30`
  (draft -07 on), one item per policy, whose missing `t` is taken from the
  policy's window `w` in `RateLimit-Policy: "default";q=100;w=60`.

The budget counts as used up when remaining is 0 or less (EXHAUSTED_AT): a
vendor allowing 100 requests gets its 100 at full speed, and the 101st waits
for the reset instead of meeting a 429. A remaining of 0 without a reset says
nothing about how long to wait, so it pauses nothing (a 429 that follows is
handled as one). A reset larger than EPOCH_AFTER is a Unix time (in
milliseconds past EPOCH_MS_AFTER), otherwise seconds from now; Unix times are
compared with this machine's clock.
"""

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

EXHAUSTED_AT = 0
EPOCH_AFTER = 1e9
EPOCH_MS_AFTER = 1e12
DEFAULT_NAMES = {"remaining": "X-RateLimit-Remaining", "reset": "X-RateLimit-Reset"}
# A header giving the window's length in milliseconds instead of a reset
# (HubSpot's X-HubSpot-RateLimit-Interval-Milliseconds): a used-up budget
# waits one whole window, the longest the vendor can mean.
WINDOW_KEY = "window_ms"
_DRAFT_NAMES = {"remaining": "RateLimit-Remaining", "reset": "RateLimit-Reset"}


@dataclass(frozen=True)
class Pause:
    """Hold the next request `seconds`; `source` names the header that said so.

    `used_up` tells a rate-limit budget at 0 from a plain Retry-After.
    """

    seconds: float
    source: str
    used_up: bool = True


def header_names(custom=None):
    """The remaining/reset header names to read, the defaults overridden by `custom`.

    Raises ValueError for a key other than "remaining" and "reset", or a name that is not a non-empty string.
    """
    custom = custom or {}
    unknown = set(custom) - set(DEFAULT_NAMES) - {WINDOW_KEY}
    if unknown:
        raise ValueError(f"Unknown rate-limit header keys {sorted(unknown)}; use 'remaining', 'reset' and 'window_ms'.")
    for key, name in custom.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"The rate-limit header name for '{key}' must be a header name.")
    return {**DEFAULT_NAMES, **{key: name.strip() for key, name in custom.items()}}


def pause_for(headers, names=None, now=None):
    """The longest pause the headers ask for, or None when they ask for none.

    `names` is what `header_names()` returns (the defaults when None). Never
    raises: a header that does not parse is ignored.
    """
    now = time.time() if now is None else now
    names = names or DEFAULT_NAMES
    pauses = [
        _retry_after(headers, now),
        _pair(headers, names, now),
        _pair(headers, _DRAFT_NAMES, now),
        _combined(headers, now),
    ]
    pauses = [pause for pause in pauses if pause is not None]
    return max(pauses, key=lambda pause: pause.seconds, default=None)


def _retry_after(headers, now):
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    seconds = _number(value)
    if seconds is None:
        seconds = _date_seconds(value, now)
    return None if seconds is None else Pause(max(0.0, seconds), "Retry-After", used_up=False)


def _pair(headers, names, now):
    remaining = _number(headers.get(names["remaining"]))
    if remaining is None or remaining > EXHAUSTED_AT:
        return None
    seconds = reset_seconds(headers.get(names["reset"]), now)
    if seconds is None and names.get(WINDOW_KEY):
        window = _number(headers.get(names[WINDOW_KEY]))
        seconds = None if window is None else max(0.0, window / 1000)
    if seconds is None:
        return None
    return Pause(seconds, f"{names['remaining']}: {remaining:g}")


def _combined(headers, now):
    """The IETF draft's `RateLimit` field, either of its two shapes."""
    members = [_member(text) for text in _split(headers.get("RateLimit") or "")]
    members = [member for member in members if member[0]]
    if not members:
        return None
    if all("=" in head and not head.startswith('"') for head, _ in members):
        fields = dict(head.split("=", 1) for head, _ in members)
        fields = {key.strip().lower(): value.strip() for key, value in fields.items()}
        remaining = _number(fields.get("remaining"))
        if remaining is None or remaining > EXHAUSTED_AT:
            return None
        seconds = reset_seconds(fields.get("reset"), now)
        return None if seconds is None else Pause(seconds, f"RateLimit: remaining={remaining:g}")
    windows = {}
    for text in _split(headers.get("RateLimit-Policy") or ""):
        name, params = _member(text)
        windows[name] = _number(params.get("w"))
    longest = None
    for name, params in members:
        remaining = _number(params.get("r"))
        if remaining is None or remaining > EXHAUSTED_AT:
            continue
        seconds = _number(params.get("t"))
        if seconds is None:
            seconds = windows.get(name)
        if seconds is not None and (longest is None or seconds > longest.seconds):
            longest = Pause(max(0.0, seconds), f"RateLimit: {name};r={remaining:g}")
    return longest


def reset_seconds(value, now=None):
    """Seconds until a reset given as seconds from now, a Unix time (s or ms) or an HTTP date.

    None when the value is none of them; 0 for a reset already past.
    """
    now = time.time() if now is None else now
    number = _number(value)
    if number is None:
        seconds = _date_seconds(value, now) if value else None
    elif number > EPOCH_MS_AFTER:
        seconds = number / 1000 - now
    elif number > EPOCH_AFTER:
        seconds = number - now
    else:
        seconds = number
    return None if seconds is None else max(0.0, seconds)


def _split(value, separator=","):
    """The non-empty parts of a structured field between separators outside quoted strings."""
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _member(text):
    """(head, {parameter: value}) of one `head;key=value;key=value` member."""
    head, *params = _split(text, ";") or [""]
    pairs = (param.split("=", 1) for param in params)
    return head, {pair[0].strip().lower(): (pair[1].strip() if len(pair) > 1 else "") for pair in pairs}


def _number(value):
    if value is None:
        return None
    try:
        number = float(str(value).strip().strip('"'))
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _date_seconds(value, now):
    try:
        return parsedate_to_datetime(value.strip()).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
