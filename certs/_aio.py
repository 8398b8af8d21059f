"""Small asyncio helpers shared by the ``certs`` shells (no I/O of their own)."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a task we own and wait for it to finish.

    The task's own ``CancelledError`` is expected and absorbed; if the *caller* is being cancelled
    while waiting, the ``CancelledError`` propagates. Any other exception of the task propagates.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
