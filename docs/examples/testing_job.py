"""A small job to test against faults: fetch new tickets from an HTTP API, summarise each with an LLM once.

It calls the tickets API through httpx and an OpenAI-style client (anything with
``client.chat.completions.create(model=..., messages=...)``, such as ``openai.OpenAI(max_retries=0)``),
and uses the four primitives: `reliable.retry` around each call, `reliable.idempotent` so a
ticket is summarised (and the summary saved) once, `reliable.single_instance` so two runs never
overlap, and `reliable.observed` so a run that fails or finds nothing is noticed.

Its tests are in ``testing_job_test.py``. Run as a script, it uses an in-process fake API and a
fake LLM, so it needs no network::

    python docs/examples/testing_job.py
"""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace
from typing import Any

import httpx

import reliable

API = "https://tickets.example.com"

SAVED: dict[int, str] = {}
"""Where summaries go: a database table in real life."""


@reliable.retry(attempts=4, deadline=120)
def fetch_tickets(http: httpx.Client) -> list[dict[str, Any]]:
    """The new tickets; transient HTTP errors are retried, a 429's Retry-After is honoured."""
    response = http.get(f"{API}/tickets", params={"status": "new"})
    response.raise_for_status()
    tickets: list[dict[str, Any]] = response.json()["tickets"]
    return tickets


@reliable.retry(attempts=3, deadline=60)
def ask_llm(llm: Any, text: str) -> str:
    """One summary from the LLM; rate limits are retried, an exhausted quota is not."""
    reply = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Summarise in one line: {text}"}]
    )
    return str(reply.choices[0].message.content)


def save(ticket_id: int, summary: str) -> None:
    """The side effect that must happen once per ticket."""
    SAVED[ticket_id] = summary


@reliable.idempotent(key=lambda llm, ticket: f"ticket:{ticket['id']}", name="ticket-summary", lease="60s")
def summarise(llm: Any, ticket: dict[str, Any]) -> str:
    """Summarise and save one ticket, once, however often the job runs."""
    summary = ask_llm(llm, ticket["text"])
    save(ticket["id"], summary)
    return summary


@reliable.observed("ticket-digest", expect=lambda count: count > 0, max_age="30m")
@reliable.single_instance("ticket-digest", on_conflict="skip")
def run(http: httpx.Client, llm: Any) -> int:
    """One run of the job: the number of tickets summarised."""
    tickets = fetch_tickets(http)
    for ticket in tickets:
        summarise(llm, ticket)
    return len(tickets)


# -- stand-ins, so that the script runs without a network ---------------------------------------


def fake_api(request: httpx.Request) -> httpx.Response:
    """An in-process tickets API."""
    return httpx.Response(200, json={"tickets": [{"id": 1, "text": "Login fails"}, {"id": 2, "text": "Slow export"}]})


class FakeLLM:
    """An object with the shape of ``openai.OpenAI()`` for ``chat.completions.create``."""

    def __init__(self) -> None:
        self.chat = SimpleNamespace(completions=self)
        self.calls = 0

    def create(self, *, model: str, messages: list[dict[str, str]]) -> Any:
        self.calls += 1
        text = messages[-1]["content"].split(": ", 1)[1]
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=f"summary of {text!r}"))])


def main() -> None:
    os.environ.setdefault("RELIABLE_LOCK_DIR", tempfile.mkdtemp())
    reliable.configure(store="memory://", alerts=[])
    llm = FakeLLM()
    with httpx.Client(transport=httpx.MockTransport(fake_api)) as http:
        print(run(http, llm), "tickets summarised:", SAVED)
        print(run(http, llm), "tickets on the second run; LLM calls in total:", llm.calls)


if __name__ == "__main__":
    main()
