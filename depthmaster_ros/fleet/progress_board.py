"""Where the bags of a fleet run report their progress (frames done per bag) and learn that the run is stopping
(Ctrl-C): a small Ray actor the driver reads for its progress bar."""

from __future__ import annotations


class ProgressBoard:
    def __init__(self):
        self.frames: dict[int, int] = {}
        self.stopping = False

    def report(self, bag: int, frames_done: int) -> bool:
        """Record a bag's frames done; whether the run is stopping."""
        self.frames[bag] = frames_done
        return self.stopping

    def frames_done(self) -> int:
        return sum(self.frames.values())

    def stop(self) -> None:
        self.stopping = True


class BoardProgress:
    """The progress object a bag's run updates (``update(frames)``): reports to the board at most every
    ``interval`` seconds (a call per batch would cost more than a small batch), and asks the run to stop when the
    board's last answer says so."""

    def __init__(self, board, bag: int, run, interval: float = 0.5):
        self.board, self.bag, self.run, self.interval = board, bag, run, interval
        self.done = 0
        self.answer = None  # the board's reply to the last report, not waited for
        self.last = 0.0

    def update(self, frames: int) -> None:
        import time

        import ray

        self.done += frames
        if self.answer is not None:
            ready, _ = ray.wait([self.answer], timeout=0)
            if ready and ray.get(self.answer):
                self.run.stop_requested = True
        if time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            self.answer = self.board.report.remote(self.bag, self.done)

    def flush(self) -> None:
        """The last report, waited for (the driver's count is complete when the bag's task returns)."""
        import ray

        ray.get(self.board.report.remote(self.bag, self.done))
