"""Admission for RayService: AdmissionReview in, AdmissionResponse out.

``webhook.review`` holds the decisions as pure functions; ``webhook.server`` is the thin aiohttp
HTTPS server around them. Decisions come from ``rayservice``; this package never imports the
reconciler or localkube.
"""

__all__: list[str] = []
