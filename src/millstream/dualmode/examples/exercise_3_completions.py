"""Exercise 3, an LLM simulator: ``POST /v1/completions`` with ``{"prompt": str, "stream":
bool = true, "max_tokens": int = 50}``, in the shape of OpenAI's legacy completions API.

Build it so that:

1. The "model" writes ``model_words(prompt, max_tokens)`` below, one word per token.
2. Streaming (the default), each word is an SSE ``data:`` event holding a chunk
   ``{"id", "object": "text_completion", "created", "model", "choices": [{"text", "index": 0,
   "logprobs": null, "finish_reason": null}]}`` (the first word as it is, the others with a
   leading space); the last chunk has empty ``text`` and ``finish_reason`` ``"length"`` when
   ``max_tokens`` cut the reply short, else ``"stop"``; then ``data: [DONE]``. One ``id``.
3. With ``"stream": false`` it answers one ``text_completion`` whose ``choices[0].text`` is the
   whole reply, with ``finish_reason`` as above and ``usage`` (``prompt_tokens`` = words of
   the prompt, ``completion_tokens``, ``total_tokens``).
4. ``max_tokens`` outside 1..2048 or an empty prompt is a 422.

Check your server: ``python -m millstream.dualmode.examples.exercise_3_completions
http://127.0.0.1:8000``. A solution: ``...examples.solutions.exercise_3_completions``.
"""

from __future__ import annotations

import sys

import httpx
import orjson

from ._serve import check_main, require, sse_events


def model_words(prompt: str, max_tokens: int) -> tuple[list[str], str]:
    """The reply (the prompt's words backwards, then "indeed") and its finish reason."""
    reply = [*reversed(prompt.split()), "indeed"]
    if len(reply) > max_tokens:
        return reply[:max_tokens], "length"
    return reply, "stop"


def _streamed(client: httpx.Client, prompt: str, max_tokens: int) -> tuple[str, str]:
    body = {"prompt": prompt, "max_tokens": max_tokens}
    events = sse_events(client.post("/v1/completions", json=body))
    require(bool(events) and events[-1].data == "[DONE]", "the stream must end in [DONE]")
    chunks = [orjson.loads(e.data) for e in events[:-1]]
    require(len({c.get("id") for c in chunks}) == 1, "one id for every chunk")
    for chunk in chunks:
        require(chunk.get("object") == "text_completion", f"object of {chunk!r}")
        choice = chunk["choices"][0]
        require(choice["index"] == 0 and "logprobs" in choice, f"choice of {chunk!r}")
    reasons = [c["choices"][0]["finish_reason"] for c in chunks]
    require(all(r is None for r in reasons[:-1]), "finish_reason only on the last chunk")
    require(chunks[-1]["choices"][0]["text"] == "", "the last chunk carries no text")
    words = [c["choices"][0]["text"] for c in chunks[:-1]]
    require(words[1:] == [" " + w.strip() for w in words[1:]], "later words start with a space")
    return "".join(words), reasons[-1]


def check(client: httpx.Client) -> None:
    """Raise ``ExerciseFailed`` unless the server at ``client.base_url`` does the exercise."""
    for prompt, limit in (("the quick brown fox", 50), ("one two three four five", 3)):
        words, reason = model_words(prompt, limit)
        text, finish = _streamed(client, prompt, limit)
        require(text == " ".join(words), f"streamed text {text!r}")
        require(finish == reason, f"finish_reason {finish!r}, expected {reason!r}")
        body = {"prompt": prompt, "max_tokens": limit, "stream": False}
        batch = client.post("/v1/completions", json=body)
        require(batch.status_code == 200, f"batch answer: status {batch.status_code}")
        answer = batch.json()
        require(answer.get("object") == "text_completion", f"batch object: {answer!r}")
        choice = answer["choices"][0]
        require(choice["text"] == text and choice["finish_reason"] == reason, "batch choice")
        prompt_tokens = len(prompt.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        require(answer.get("usage") == usage, f"usage {answer.get('usage')!r}")
    for bad in ({"prompt": "", "max_tokens": 5}, {"prompt": "hi", "max_tokens": 0}):
        require(client.post("/v1/completions", json=bad).status_code == 422, f"{bad} -> 422")


if __name__ == "__main__":
    sys.exit(check_main(check))
