"""What every write tool's parameters share: no unknown fields, and a reason for the approver.

Lengths are checked by validators, not in the JSON schema: strict tool schemas (OpenAI structured
tool calls) reject ``minLength``/``maxLength``, and the model reads the validator's sentence and
corrects its call.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

REASON_MAX = 500


class WriteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def checked_reason(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise ValueError("say in one sentence why this action helps")
    if len(text) > REASON_MAX:
        raise ValueError(f"keep the reason under {REASON_MAX} characters")
    return text


Reason = Annotated[str, AfterValidator(checked_reason)]
"""One sentence, shown to the person who must approve the action: why it helps now."""
