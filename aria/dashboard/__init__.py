"""The ARIA dashboard: a local web app for chatting and for running the node.

A static single-page app (plain HTML, CSS and JavaScript modules, no build step, no
framework) shipped inside the package under ``static/`` and served by ``aria api
start`` at ``/`` (:class:`Site`). It talks only to its own origin: the OpenAI endpoints
for chat, the management API under ``/api`` for everything else (see
``aria.api.manage``), and live events over SSE. docs/dashboard.md says why this stack.

This package imports nothing from ``aria.api``: the API includes the site, not the
other way round.
"""

from aria.dashboard.site import CONTENT_SECURITY_POLICY, Site

__all__ = ["CONTENT_SECURITY_POLICY", "Site"]
