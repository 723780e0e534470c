"""Where the widget's Sendbird session stands, and how the session panel shows it.

The phase is what handlers decide on; the label and colour are only how the panel
displays it, so they live in one table here instead of being written next to every
transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["PHASE_DISPLAY", "PhaseDisplay", "SessionPhase", "Tone"]

Tone = Literal["gray", "amber", "blue", "green", "red"]


class SessionPhase(StrEnum):
    """The session's phase, from the first token to its end."""

    NOT_STARTED = "not_started"
    ISSUING_FIRST_TOKEN = "issuing_first_token"  # noqa: S105 - a phase name
    START_FAILED = "start_failed"
    CONNECTING = "connecting"
    WIDGET_LOADED = "widget_loaded"
    CONNECTED = "connected"
    RECONNECTING_SDK = "reconnecting_sdk"
    DISCONNECTED = "disconnected"
    CONNECTION_FAILED = "connection_failed"
    REFRESHING = "refreshing"
    REFRESHED = "refreshed"
    REFRESH_FAILED = "refresh_failed"
    SESSION_ERROR = "session_error"
    WIDGET_ERROR = "widget_error"
    RECONNECTING = "reconnecting"
    RECONNECT_FAILED = "reconnect_failed"
    CLOSED = "closed"
    ENDED = "ended"


@dataclass(frozen=True)
class PhaseDisplay:
    """How the session panel shows a phase.

    Attributes:
        label: The status text.
        tone: The badge colour.
        offers_reconnect: Whether the Reconnect button is enabled in this phase. It is
            also offered while connected: a widget that shows nothing (its cached channel
            was deleted at Sendbird) reports no error, and Reconnect starts a fresh channel.
    """

    label: str
    tone: Tone
    offers_reconnect: bool


PHASE_DISPLAY: dict[SessionPhase, PhaseDisplay] = {
    SessionPhase.NOT_STARTED: PhaseDisplay("Not started", "gray", offers_reconnect=True),
    SessionPhase.ISSUING_FIRST_TOKEN: PhaseDisplay(
        "Issuing the first session token…", "amber", offers_reconnect=False
    ),
    SessionPhase.START_FAILED: PhaseDisplay(
        "Could not start the chat session", "red", offers_reconnect=True
    ),
    SessionPhase.CONNECTING: PhaseDisplay(
        "Token issued; connecting the widget", "blue", offers_reconnect=False
    ),
    SessionPhase.WIDGET_LOADED: PhaseDisplay(
        "Widget loaded; connecting…", "blue", offers_reconnect=False
    ),
    # "Connected" only once the Sendbird SDK reports its connection (the bridge observes it).
    SessionPhase.CONNECTED: PhaseDisplay("Connected", "green", offers_reconnect=True),
    SessionPhase.RECONNECTING_SDK: PhaseDisplay(
        "Connection lost; the SDK is reconnecting…", "amber", offers_reconnect=False
    ),
    SessionPhase.DISCONNECTED: PhaseDisplay("Disconnected", "red", offers_reconnect=True),
    SessionPhase.CONNECTION_FAILED: PhaseDisplay(
        "Could not connect to Sendbird", "red", offers_reconnect=True
    ),
    SessionPhase.REFRESHING: PhaseDisplay(
        "Refreshing the session token…", "amber", offers_reconnect=False
    ),
    SessionPhase.REFRESHED: PhaseDisplay(
        "Connected (session refreshed)", "green", offers_reconnect=True
    ),
    SessionPhase.REFRESH_FAILED: PhaseDisplay("Token refresh failed", "red", offers_reconnect=True),
    SessionPhase.SESSION_ERROR: PhaseDisplay("Session error", "red", offers_reconnect=True),
    SessionPhase.WIDGET_ERROR: PhaseDisplay("Widget error", "red", offers_reconnect=True),
    SessionPhase.RECONNECTING: PhaseDisplay("Reconnecting…", "amber", offers_reconnect=False),
    SessionPhase.RECONNECT_FAILED: PhaseDisplay("Reconnect failed", "red", offers_reconnect=True),
    SessionPhase.CLOSED: PhaseDisplay("Session closed", "gray", offers_reconnect=True),
    SessionPhase.ENDED: PhaseDisplay("Session ended", "gray", offers_reconnect=True),
}
