"""A local emulator of the parts of Sendbird that the chatbot widget and our server use.

The reference app issues Sendbird session tokens on the server and hands them to the
``@sendbird/chat-ai-widget``. Exercising that flow against the real service needs credentials,
network access and patience (tokens last days). The sandbox answers on one local port with:

* the Platform API calls our server makes (users, session tokens, revocation) with Sendbird's
  error envelope, codes and rate-limit headers;
* the REST calls and the WebSocket protocol the widget's SDK uses, including session keys that
  expire and the ``EXPR`` signals that make the widget call ``onSessionTokenRequired``;
* a deterministic bot that answers every message;
* a control surface under ``/__sandbox__/`` to expire or revoke sessions, inject faults and
  outages, list issued tokens (digests only) and count calls, with one client for it
  (:mod:`.control_client`: ``SandboxControlClient`` and ``AsyncSandboxControlClient``).

Its defaults (port 8090, app ``sandbox-app``, bot ``sandbox-bot``) and the ``SANDBOX_*``
variables are defined in :mod:`sample_app.config`, for the embedded and the standalone sandbox.

Typical use::

    from sample_app.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(api_token="local-sandbox-secret")) as sandbox:
        print(sandbox.http_url, sandbox.ws_url)

or ``make sandbox`` (``python -m sample_app.sandbox``, token from ``SANDBOX_API_TOKEN``).
"""

from .app import create_sandbox_app
from .config import SandboxConfig
from .control_client import AsyncSandboxControlClient, SandboxControlClient
from .server import SandboxAddress, SandboxServer, serve

__all__ = [
    "AsyncSandboxControlClient",
    "SandboxAddress",
    "SandboxConfig",
    "SandboxControlClient",
    "SandboxServer",
    "create_sandbox_app",
    "serve",
]
