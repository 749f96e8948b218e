"""Predict, then observe: the learner commits to an outcome before running an experiment,
and the trace or the rule counters say whether it came true.

    p = lab.predict("05-p1", "What source address will example.com see?",
                    choices={"a": "10.0.0.2", "b": "203.0.113.10"})
    p.answer = "b"                       # committed (and recorded) before the experiment
    with lab.trace("tcp port 80") as t:
        lab.sh("curl -s http://198.51.100.10/", ns="c1")
    p.observe_trace(t, "source_at", at="world:web",
                    because="MASQUERADE rewrote the source as the packet left eth0")

The observed value is read from the real trace (or counters): never from the notebook.
A prediction made after its observation, or after its trace started, does not count.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..course.progress import ShownResult
from ..model.errors import LabError
from ..views.observe import TRACE_FACTS, counted_rules, same_value, trace_fact


@dataclass(repr=False)   # shown by ShownResult
class Outcome(ShownResult):
    """A prediction compared with what happened: ✅ or ❌, with the explanation."""
    exercise: str
    question: str
    predicted: str | None
    observed: str
    passed: bool
    explanation: str = ""
    note: str = ""

    def text(self) -> str:
        if self.predicted is None:
            head = f"❌ {self.exercise}: no prediction was committed before the experiment"
        else:
            head = (f"✅ {self.exercise}: you predicted {self.predicted}, and so it was" if self.passed else
                    f"❌ {self.exercise}: you predicted {self.predicted}; what happened: {self.observed or 'nothing seen'}")
        lines = [head, f"  question: {self.question}"]
        if not self.passed and self.predicted is not None or self.predicted is None:
            lines.append(f"  observed: {self.observed or 'nothing seen'}")
        if self.note:
            lines.append(f"  {self.note}")
        if self.explanation:
            lines.append(f"  why: {self.explanation}")
        return "\n".join(lines)

    def data(self) -> dict:
        return {"kind": "prediction", "exercise": self.exercise, "passed": self.passed,
                "predicted": self.predicted, "observed": self.observed, "in_time": not self.note.startswith("the pre")}

    def __bool__(self) -> bool:
        return self.passed


class Prediction:
    """One question, its choices, and the learner's committed answer (`p.answer = "b"`)."""

    def __init__(self, exercise: str, question: str, choices: dict[str, str] | None = None,
                 answer: str | None = None):
        self.exercise, self.question = exercise, question
        self.choices = {str(k): str(v) for k, v in (choices or {}).items()}
        self._answer: str | None = None
        self.answered_at: float | None = None
        self.outcome: Outcome | None = None
        if answer is not None:
            self.answer = answer

    @property
    def answer(self) -> str | None:
        return self._answer

    @answer.setter
    def answer(self, value) -> None:
        if self.outcome is not None:
            raise LabError(f"{self.exercise} was already observed: a prediction made after the outcome does not "
                           "count; make a new one for the next experiment")
        value = str(value).strip()
        if self.choices and value not in self.choices and value not in self.choices.values():
            raise LabError(f"choose one of {', '.join(self.choices)} (you gave {value!r})")
        self._answer, self.answered_at = value, time.time()
        from ..course.progress import record
        record(self.exercise, _Committed(self.exercise, value), kind="prediction-made")

    @property
    def predicted_value(self) -> str | None:
        if self._answer is None:
            return None
        return self.choices.get(self._answer, self._answer)

    def _label(self) -> str | None:
        if self._answer is None:
            return None
        value = self.predicted_value
        key = next((k for k, v in self.choices.items() if v == value), None)
        return f"{key}) {value}" if key else value

    def observe(self, observed, *, because: str = "", started: float | None = None) -> Outcome:
        """Compare the committed answer with `observed` (a value read from the lab:
        a trace fact, a counter, a command's output), with `because` as the explanation."""
        observed = str(observed)
        note = ""
        if self.answered_at is not None and started is not None and self.answered_at > started:
            passed, note = False, "the prediction was made after the experiment had started, so it does not count"
            predicted = self._label()
        elif self._answer is None:
            passed, predicted = False, None
        else:
            predicted = self._label()
            passed = same_value(self.predicted_value, observed)
            right = next((f"{k}) {v}" for k, v in self.choices.items() if same_value(v, observed)), None)
            if not passed and right:
                note = f"the right choice was {right}"
        self.outcome = Outcome(self.exercise, self.question, predicted, observed, passed, because, note)
        from ..course.progress import record
        record(self.exercise, self.outcome)
        return self.outcome

    def observe_trace(self, trace, fact: str, *, at: str | None = None, because: str = "") -> Outcome:
        """Read `fact` from a finished trace (see TRACE_FACTS: dies_at, source_at,
        destination_at, replied, verdict_rule, path) and compare."""
        if fact not in TRACE_FACTS:
            raise LabError(f"unknown fact {fact!r}; choose one of: {', '.join(TRACE_FACTS)}")
        result = getattr(trace, "result", trace)
        if result is None:
            raise LabError("the trace is still running: observe it after the `with lab.trace(...)` block")
        return self.observe(trace_fact(result.packets, fact, at), because=because,
                            started=getattr(trace, "started", None))

    def observe_counters(self, before, after, *, because: str = "") -> Outcome:
        """Which rule counted the packet: the rules whose counters moved between two
        readings (`lab.counters()` before and after the experiment)."""
        moved = counted_rules(before, after)

        def counted(value: str | None):
            return next((m for m in moved if value is not None and (
                same_value(value, m[3]) or (m[3].startswith("policy") and value.lower() in
                                            (m[3].lower(), f"{m[2]} {m[3]}".lower())))), None)
        hit = counted(self.predicted_value)
        observed = "; ".join(f"{chain} {text}" if text.startswith("policy") else text
                             for _ns, _table, chain, text in moved) or "no counter moved"
        outcome = self.observe(hit[3] if hit else observed, because=because, started=getattr(before, "taken", None))
        if not outcome.passed and not outcome.note:
            right = [f"{k}) {v}" for k, v in self.choices.items() if counted(v)]
            if right:
                outcome.note = f"the right choice was {' and '.join(right)}"
        return outcome

    def __repr__(self) -> str:
        lines = [f"🔮 {self.exercise}: {self.question}"]
        lines += [f"   {k}) {v}" for k, v in self.choices.items()]
        lines.append(f"   your prediction: {self._label()}" if self._answer is not None
                     else "   commit your prediction before running anything: p.answer = "
                          + (f'"{next(iter(self.choices))}"' if self.choices else '"..."'))
        return "\n".join(lines)


@dataclass
class _Committed:
    exercise: str
    answer: str
    passed: bool = False

    def data(self) -> dict:
        return {"kind": "prediction-made", "exercise": self.exercise, "answer": self.answer}
