"""Retrying generator and async generator functions: only until the first item reaches the consumer.

Opening a stream (an LLM's streaming response, a paginated download) is where the
429s, 529s and connection errors happen, and retrying it is safe while the consumer
has seen nothing. Once an item has been handed over, a failure propagates: a retry
would deliver items twice. After the first item the wrapper is transparent:
``send()``, ``throw()`` and ``close()`` reach the wrapped generator.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from functools import wraps
from typing import Any

from ._internal import _clock
from ._retry_options import Options
from ._retry_run import Run, drive_async, drive_sync

__all__ = ["wrap_async_generator", "wrap_generator"]

_DONE: Any = object()


def wrap_generator(options: Options, name: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Generator[Any]]:
    """Wrap a generator function: retry opening it and producing its first item."""
    current = _clock.current
    budget = options.budget

    @wraps(fn)
    def retried_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if budget is not None:
            budget.record_call()
        clock = current()
        start = clock.monotonic()

        def first_item() -> tuple[Any, Any, Any]:
            gen = fn(*args, **kwargs)
            try:
                item = next(gen)
            except StopIteration as stop:
                return gen, _DONE, stop.value
            return gen, item, None

        first: Exception | None = None
        try:
            opened = first_item()
        except Exception as exc:
            first = exc
        if first is not None:
            try:
                opened = drive_sync(Run(options, name, clock, start), first_item, (), {}, first)
            finally:
                first = None
        gen, item, value = opened
        if item is _DONE:
            return value
        return (yield from _rest(gen, item))

    return retried_generator


def _rest(gen: Any, item: Any) -> Generator[Any, Any, Any]:
    """Hand *item* over, then forward everything between the consumer and *gen* until it ends."""
    try:
        while True:
            try:
                sent = yield item
            except GeneratorExit:
                raise
            except BaseException as thrown:
                try:
                    item = gen.throw(thrown)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    item = gen.send(sent)
                except StopIteration as stop:
                    return stop.value
    finally:
        gen.close()


def wrap_async_generator(
    options: Options, name: str, fn: Callable[..., AsyncIterator[Any]]
) -> Callable[..., AsyncGenerator[Any]]:
    """Wrap an async generator function: retry opening it and producing its first item."""
    current = _clock.current
    budget = options.budget

    @wraps(fn)
    async def retried_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        if budget is not None:
            await budget.arecord_call()
        clock = current()
        start = clock.monotonic()

        async def first_item() -> tuple[Any, Any]:
            agen: Any = fn(*args, **kwargs)
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                return agen, _DONE
            return agen, item

        first: Exception | None = None
        try:
            opened = await first_item()
        except Exception as exc:
            first = exc
        if first is not None:
            try:
                opened = await drive_async(Run(options, name, clock, start), first_item, (), {}, first)
            finally:
                first = None
        agen, item = opened
        if item is _DONE:
            return
        try:
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as thrown:
                    try:
                        item = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        return
                else:
                    try:
                        item = await (agen.__anext__() if sent is None else agen.asend(sent))
                    except StopAsyncIteration:
                        return
        finally:
            await agen.aclose()

    return retried_async_generator
