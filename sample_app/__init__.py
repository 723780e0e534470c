"""Reference Reflex app: Sendbird's AI chatbot widget with server-issued session tokens."""
