"""The sandbox bot's answers: deterministic, topical, with suggested replies."""

from __future__ import annotations

import pytest

from sample_app.sandbox.bot import QUESTIONS, classify, reply_to


@pytest.mark.parametrize(
    ("message", "topic"),
    [
        ("help", "help"),
        ("Hi there", "help"),
        ("How are session tokens issued?", "token"),
        ("what is the Api-Token for", "token"),
        ("What is a session key?", "session"),
        ("why did it reconnect", "session"),
        ("What happens when a token expires?", "expire"),
        ("I got 400302", "expire"),
        ("How do I revoke a session?", "revoke"),
        ("log out please", "revoke"),
        ("What can the sandbox do?", "sandbox"),
        ("inject a 429", "sandbox"),
        ("the weather is nice", "default"),
        ("chitchat", "default"),  # "hi" inside a word is not a greeting
    ],
)
def test_topics(message: str, topic: str) -> None:
    assert classify(message) == topic


def test_suggested_questions_lead_to_their_topic() -> None:
    for topic, question in QUESTIONS.items():
        assert classify(question) == topic


def test_same_input_same_answer() -> None:
    assert reply_to("token?") == reply_to("token?")
    assert reply_to("random words") == reply_to("random words")


def test_default_answer_quotes_the_message_briefly() -> None:
    reply = reply_to("the weather is nice")
    assert '"the weather is nice"' in reply.text
    long_reply = reply_to("blah " * 500)
    assert len(long_reply.text) < 600


def test_replies_carry_suggestions_without_the_current_topic() -> None:
    reply = reply_to("How do I revoke a session?")
    assert reply.topic == "revoke"
    assert QUESTIONS["revoke"] not in reply.suggested_replies
    assert len(reply.suggested_replies) == len(QUESTIONS) - 1
    assert reply.extended_payload == {"suggested_replies": list(reply.suggested_replies)}


def test_answers_explain_the_session_flow() -> None:
    assert "onSessionTokenRequired" in reply_to("help").text
    assert "POST /v3/users/{user_id}/token" in reply_to("token").text
    assert "EXPR 400309" in reply_to("session key").text
    assert "/__sandbox__/users/{user_id}/expire-token" in reply_to("expire").text
    assert "400310" in reply_to("revoke").text
    assert "faults" in reply_to("sandbox").text
