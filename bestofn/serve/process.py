"""The server process: uvicorn with a graceful drain on SIGTERM / Ctrl-C and a non-zero exit
when the engine dies (for a supervisor to restart it).

- First SIGTERM or SIGINT: the app drains (`app.state.drain`): new requests get 503 with
  Retry-After, `/health` turns 503 `draining`, the admitted requests have `drain_s` to be
  answered (the rest get 503), then uvicorn closes the connections and the process exits 0.
  A second signal exits at once (uvicorn's own behaviour).
- The engine dies (`Batcher` sees an `EngineFailure` caused by a dead engine): every admitted
  request gets its 503 naming the engine, `/health` turns 503 `dead` with the reason, then
  the process exits with `ENGINE_DEAD_EXIT`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

ENGINE_DEAD_EXIT = 3
"""Exit status after the engine died (the in-flight requests were answered 503 first)."""

ANSWER_GRACE_S = 0.5
"""Time the 503s get to reach their clients before the server stops after an engine death."""

log = logging.getLogger("bestofn.serve")


class Exit:
    """Where the server's exit status is decided; `engine_died` is the app's
    `on_engine_death`."""

    def __init__(self) -> None:
        self.code = 0
        self.server: Any = None

    def engine_died(self, reason: str) -> None:
        self.code = ENGINE_DEAD_EXIT
        if self.server is not None:
            asyncio.get_running_loop().call_later(ANSWER_GRACE_S, self.server.stop)


def make_server(app: Any, exit_: Exit, host: str, port: int, drain_s: float,
                **uvicorn_options: Any) -> Any:
    """A uvicorn server for `app` whose first SIGTERM/SIGINT drains (`drain_s`) before it
    stops; `exit_.code` is the status to exit with once `server.run()` returns."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        draining = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.draining or self.should_exit:
                return super().handle_exit(sig, frame)  # a second signal: stop now
            self.draining = True
            log.warning("%s: draining (at most %g s), new requests get 503",
                        signal.Signals(sig).name, drain_s)
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.drain()))

        async def drain(self) -> None:
            left = await app.state.drain(drain_s)
            if left:
                log.warning("%d requests were not answered within %g s: they got 503", left,
                            drain_s)
            self.stop()

        def stop(self) -> None:
            self.should_exit = True

        async def serve(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets)

    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=5,
                            **uvicorn_options)
    server = DrainingServer(config)
    exit_.server = server
    return server
