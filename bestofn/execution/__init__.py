"""Execution: every run, request and search is jobs on one scheduler loop (docs/scheduler.md).

The loop (`scheduler.py`), its jobs (`fixed.FixedJob`; the adaptive and search jobs live with
their kind), the streams that reach a policy engine (`streams.py` and one module each), the
scoring side beside it (`scoring.py`), the one place the loop is built (`jobs.py`), the
engines in this process or on Ray (`workers.py`, `ray_workers.py`, chosen in
`placement.py`) and the run driver (`driver.py`: resume, results, retries, failures).

A run hands the scheduler *jobs* (one per question: which sample to start
next, what to do with a finished one, when the question is settled). The scheduler keeps up
to `Budget.in_flight` samples running over all questions (at most `Budget.per_question` of
one question), refills as samples finish, and aborts a question's running requests the moment
its job says it is settled. Sample k of a question is requested with the question's seed + k,
the seed vLLM gives the k-th child of an `n` request, so a streamed sample is the same text
as in a fixed run.

Engines are reached through the small `SampleStream` protocol (`streams.py`): submit,
poll, abort. `STREAMS` maps a policy backend to its stream: vLLM's request-level engine
interface, concurrent cancellable HTTP requests for OpenAI-compatible servers, and an ordered
stream that serves any other policy (hf, replay) one question at a time. The Ray policy actors
host a stream each (`ray_stream.RayStream`). What every request cost is kept in a
`ledger.Compute` per question.
"""

from ..evaluation.ledger import Compute, StageClock
from .requests import Finished, SampleError, SampleKey
from .scheduler import Budget, Job, Scheduler
from .streams import STREAMS, SampleStream, make_stream

__all__ = ["STREAMS", "Budget", "Compute", "Finished", "Job", "SampleError", "SampleKey",
           "SampleStream", "Scheduler", "StageClock", "make_stream"]
