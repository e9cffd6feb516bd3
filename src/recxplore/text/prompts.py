"""Rewriting prompts (one per mode) and the cleaning of what the generator returns.

The user message is the template with ``{domain}`` (the source's noun, e.g. movie) and
``{text}`` (the item's flattened attributes) filled in; the system message is ``SYSTEM``.
"""

from __future__ import annotations

import re

SYSTEM = "You are a helpful assistant who describes catalogue items accurately and briefly."

TEMPLATES = {
    "keywords": (
        "Here are the attributes of a {domain}:\n{text}\n\nList 5 to 10 short keywords "
        "that describe this {domain}, separated by commas. Answer with the keywords "
        "only."
    ),
    "summary": (
        "Here are the attributes of a {domain}:\n{text}\n\nSummarise this {domain} in one "
        "or two sentences. Answer with the summary only."
    ),
    "expansion": (
        "Here are the attributes of a {domain}:\n{text}\n\nDescribe this {domain} using "
        "what you know about it: what it is about, its style, who it is for and "
        "anything notable, in at most three sentences. Answer with the description "
        "only."
    ),
}

_MARKUP = re.compile(r"<\|[^|>]*\|>|</?s>|\[/?INST\]|<end_of_turn>|<start_of_turn>")
_ROLE = re.compile(r"^\s*(assistant|system|user)\s*[:\n]", re.I)
_LABEL = re.compile(r"^\s*(keywords|summary|description|answer)\s*:\s*", re.I)
# "Here are 5 keywords that describe this movie:" -- a preamble small models like to write
_PREAMBLE = re.compile(r"^\s*(here (is|are)|sure)\b[^:\n]{0,100}:\s*", re.I)


def user_message(mode: str, text: str, domain: str) -> str:
    return TEMPLATES[mode].replace("{domain}", domain).replace("{text}", text)


def clean(output: str, prompt: str, max_chars: int) -> str:
    """Strip chat markup, an echoed prompt, role and answer labels; one line, at most
    ``max_chars`` characters cut at a word. An empty result means the generation failed."""
    text = _MARKUP.sub(" ", output)
    if text.strip().startswith(prompt.strip()):
        text = text.strip()[len(prompt.strip()) :]
    text = _ROLE.sub("", text)
    text = _LABEL.sub("", _PREAMBLE.sub("", text))
    text = re.sub(r"\s+", " ", text).strip().strip('"').strip()
    if len(text) > max_chars:
        cut = text[: max_chars + 1].rsplit(" ", 1)[0]
        text = (cut if cut else text[:max_chars]).rstrip(" ,;")
    return text
