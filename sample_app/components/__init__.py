"""Reusable UI pieces; the widget wrapper lives in chat_ai_widget.py."""
