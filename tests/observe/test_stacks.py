"""Stack dumps: every thread, and each task's chain of coroutines down to what it awaits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sleuth.observe import stacks
from sleuth.observe.stacks import format_stacks
from tests.patience import PATIENCE


async def innermost_waiter(event: asyncio.Event) -> None:
    await event.wait()


async def outermost_waiter(event: asyncio.Event) -> None:
    await innermost_waiter(event)


def _section(dump: str, start: str) -> str:
    return dump[dump.index(start) :].split("\n\n")[0]


def test_dump_from_the_loop_shows_whole_coroutine_chains() -> None:
    async def main() -> str:
        event = asyncio.Event()
        task = asyncio.create_task(outermost_waiter(event), name="chain")
        await asyncio.sleep(0.01)
        dump = format_stacks(asyncio.get_running_loop(), header="HEAD\n")
        event.set()
        await task
        return dump

    dump = asyncio.run(main())
    assert dump.startswith("HEAD\n--- threads (")
    chain = _section(dump, "Task 'chain' (suspended)")
    lines = chain.splitlines()
    outer = next(i for i, line in enumerate(lines) if "in outermost_waiter" in line)
    inner = next(i for i, line in enumerate(lines) if "in innermost_waiter" in line)
    assert outer < inner  # outermost first
    assert "await event.wait()" in chain
    assert lines[-1].startswith("  awaiting <Future pending")
    assert "(running now)" in dump  # the task that took the dump


def test_dump_from_another_thread_labels_the_loop_thread_and_skips_itself() -> None:
    result: list[str] = []

    async def main() -> None:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def from_outside() -> None:
            me = threading.get_ident()
            result.append(format_stacks(loop, loop_thread=loop_thread, skip_thread=me))

        task = asyncio.create_task(outermost_waiter(event), name="chain")
        await asyncio.sleep(0)  # the task runs down to what it awaits before the dump
        await asyncio.to_thread(from_outside)
        event.set()
        await task

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="the-loop")
    thread.start()
    thread.join(PATIENCE)
    (dump,) = result
    loop_section = _section(dump, "Thread 'the-loop'")
    assert "runs the event loop" in loop_section.splitlines()[0]
    assert "this dump's writer, left out" in dump
    assert "in innermost_waiter" in _section(dump, "Task 'chain'")


def test_a_huge_dump_is_cut_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks, "MAX_DUMP_CHARS", 300)
    dump = format_stacks(None, header="H" * 1000)
    assert dump == "H" * 300 + "\n[cut at 300 characters]\n"
