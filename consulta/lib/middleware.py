from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Pages may load nothing from another host and run no inline script."""

    POLICY = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.POLICY)
        response.setdefault(
            "Permissions-Policy",
            "camera=(self), microphone=(self), display-capture=(self), "
            "geolocation=(), payment=(), usb=()",
        )
        if settings.BEHIND_TLS:
            response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
