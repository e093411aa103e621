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
    """The progress object a bag's run updates (``update(frames)``), reporting to the board and asking the run to
    stop when the board says so."""

    def __init__(self, board, bag: int, run):
        self.board, self.bag, self.run = board, bag, run
        self.done = 0

    def update(self, frames: int) -> None:
        import ray

        self.done += frames
        if ray.get(self.board.report.remote(self.bag, self.done)):
            self.run.stop_requested = True
