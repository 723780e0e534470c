"""Reflex state: who is signed in (auth) and the widget's Sendbird session (chat_session)."""
