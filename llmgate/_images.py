"""Opt-in download of image URLs for vendors that accept only bytes (Bedrock, Ollama, Gemini).

Off by default: a provider calls :func:`fetch_image` only when the caller set the
provider option ``allow_image_download=True``. Only http and https are followed, the body
is capped in size, and the whole fetch has a timeout.
"""

from __future__ import annotations

import mimetypes
import urllib.parse

from .exceptions import InvalidRequestError, VisionNotSupported

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_mime_type(data: bytes, fallback: str | None = None) -> str:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return fallback or "image/png"


def url_not_supported(provider: str, model: str) -> VisionNotSupported:
    """The error for an image URL sent to a vendor that takes only bytes."""
    return VisionNotSupported(
        f"{provider} accepts images only as bytes, not URLs: send ImagePart.from_bytes(...), "
        f"or let llmgate download the URL with "
        f"LLMGate(provider_options={{'{provider}': {{'allow_image_download': True}}}})",
        provider=provider,
        model=model,
    )


def fetch_image(
    url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of an http(s) image, at most ``max_bytes`` long."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequestError(
            f"only http and https image URLs can be downloaded, not {scheme!r}"
        )
    from urllib.error import URLError  # only downloads need urllib's HTTP machinery
    from urllib.request import Request, urlopen

    request = Request(url, headers={"User-Agent": "llmgate"})
    try:
        with urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidRequestError(
                    f"image at {url} is {declared} bytes, over the {max_bytes}-byte limit"
                )
            data = response.read(max_bytes + 1)
            content_type = (response.headers.get_content_type() or "").lower()
    except URLError as exc:
        raise InvalidRequestError(f"could not download image {url}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise InvalidRequestError(f"downloading image {url} timed out after {timeout} s") from exc
    if len(data) > max_bytes:
        raise InvalidRequestError(f"image at {url} is over the {max_bytes}-byte limit")
    guessed = mimetypes.guess_type(urllib.parse.urlsplit(url).path)[0]
    declared_type = content_type if content_type.startswith("image/") else guessed
    return data, sniff_mime_type(data, declared_type)
