"""Operations in their JSON form: what a process outside the loop (the App's worker) delivers from its store."""

from __future__ import annotations

import json

import pytest

from agent.events import Approval, Compact, Interrupt, Shutdown, Undo, UserInput, op_from_dict, op_to_dict


@pytest.mark.parametrize(
    "op",
    [
        UserInput("fine-tune distilbert"),
        Approval("call_1", approved=False, feedback="too expensive", always=False, approver="octocat"),
        Interrupt(),
        Compact(),
        Undo(),
        Shutdown(),
    ],
)
def test_operations_survive_a_json_round_trip(op: object) -> None:
    assert op_from_dict(json.loads(json.dumps(op_to_dict(op)))) == op  # type: ignore[arg-type]


def test_an_approval_in_json_form() -> None:
    assert op_to_dict(Approval("c", approved=True, approver="octocat")) == {
        "call_id": "c",
        "approved": True,
        "feedback": "",
        "always": False,
        "approver": "octocat",
        "op": "approval",
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"op": "launch"}, "unknown operation 'launch'; expected one of user_input, approval"),
        ({"text": "hi"}, "unknown operation None"),
        ({"op": "approval", "approved": True}, "bad approval operation"),
        ({"op": "user_input", "text": "hi", "extra": 1}, "bad user_input operation"),
    ],
)
def test_malformed_operations_are_value_errors_naming_the_problem(data: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        op_from_dict(data)
