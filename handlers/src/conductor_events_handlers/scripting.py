"""JavaScript conditions in an embedded QuickJS engine, with a time and a memory limit.

Conductor evaluates a handler's condition with GraalJS: ``$`` is bound to the (expanded)
payload and the script's completion value is the result. Here the engine is QuickJS (the
``quickjs-ng`` package, which installs the ``quickjs`` module): small, embeddable, no I/O, no
modules, about a microsecond per call. (The older ``quickjs`` package, QuickJS 2021, corrupts
its heap when a condition runs out of memory and later crashes the process; quickjs-ng does
not.)

How a condition runs. At load time it is compiled once into a function of the payload's JSON
text: ``function(json) { var $ = parse(json, expand); return (<condition>); }``, where
``parse`` is the engine's own ``JSON.parse``, kept in the wrapper's closure, and the reviver
``expand`` parses inline JSON as :func:`~conductor_events_handlers.inline_json.expand` does.
A condition that is not one expression (statements, ``var``, several lines ending in an
expression) is compiled as a program instead and run with a direct ``eval`` inside that
function (so its ``var`` declarations are the function's own), and its completion value is the
result, as in Conductor; that form is slower but equivalent. A syntax error is reported at
load time.

Isolation. Conditions of different handlers share a context, so nothing one of them does may
change what another sees. Before any condition is compiled, every built-in object reachable
from the global object (constructors, their prototypes, ``JSON``, ``Math``, the iterator and
generator prototypes, ...) is frozen, and so is the global object itself: a condition that
assigns ``Object.prototype.approved``, replaces ``JSON.parse`` or ``Math``, or creates a
global variable changes nothing (silently, as JavaScript does for writes to frozen objects;
in strict mode it throws). Each call parses the payload afresh, so a condition cannot change
what the next one sees. A fresh context per call would isolate as well, at about sixteen times
the cost (see docs/performance.md).

Limits. Each call may run ``timeout`` seconds (Conductor's default is 4) and the engine may
allocate ``memory_limit`` bytes; a condition that exceeds either raises :class:`ScriptError`
and later calls go on (see :class:`Runtime` for what happens after running out of memory).

Threads. A QuickJS runtime must only ever be used from one thread, and a runaway condition
must not stop the event loop, so an engine owns a thread: every compile and call runs there.
Async callers use :meth:`ScriptEngine.run` and hand it a batch of work, so the hop to the
engine's thread is paid once per message, not once per condition. A service runs several
engines (:class:`~conductor_events_handlers.engines.EnginePool`), so one event's runaway
conditions cannot hold up another event's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import importlib.metadata
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger(__name__)

_MAX_STACK = 1 << 20
"""QuickJS's own stack limit: deeper recursion is a "stack overflow" error."""
_THREAD_STACK = 8 << 20
"""The engine thread's C stack, well above ``_MAX_STACK`` whatever the platform's default
(musl gives threads 128 KiB, less than QuickJS's limit, which would crash instead)."""
_EXPAND = (
    "function __expand(k, v) { if (typeof v === 'string') { var c = v.charCodeAt(0);"
    " if (c === 123 || c === 91) { try { return __parse(v, __expand); } catch (e) {} } }"
    " return v; }"
)
"""A ``JSON.parse`` reviver doing :func:`~conductor_events_handlers.inline_json.expand` in the
engine: strings that start with ``{`` or ``[`` and parse are replaced by their value, nested
ones too. Native parsing makes this cheaper than expanding in Python and encoding again.
``__parse`` is the wrapper's own reference to ``JSON.parse``."""
_RESULT = "return typeof __r === 'boolean' ? __r : (typeof __r === 'number' && __r > 0);"
_WRAPPER = (
    "(function(){ const __parse = JSON.parse; const __expand = Object.freeze(" + _EXPAND + ");"
    " return Object.freeze(function(__json){ var $ = __parse(__json, __expand);"
    " var __r = @BODY@; " + _RESULT + " }); })()"
)
"""The closure's bindings are ``const`` and its functions frozen, so a condition cannot
replace the parser or the reviver its own later calls use."""
_HARDEN = """(function () {
  'use strict';
  var G = globalThis, ownKeys = Reflect.ownKeys, protoOf = Object.getPrototypeOf,
      describe = Object.getOwnPropertyDescriptor, freeze = Object.freeze, seen = new Set();
  function harden(root) {
    var todo = [root];
    while (todo.length) {
      var o = todo.pop();
      if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o)) {
        continue;
      }
      seen.add(o);
      freeze(o);
      todo.push(protoOf(o));
      var keys = ownKeys(o);
      for (var i = 0; i < keys.length; i++) {
        var d = describe(o, keys[i]);
        if ('value' in d) { todo.push(d.value); } else { todo.push(d.get, d.set); }
      }
    }
  }
  [G, protoOf(function* () {}), protoOf(async function () {}), protoOf(async function* () {}),
   protoOf((function* () {})()), protoOf((async function* () {})()),
   protoOf([][Symbol.iterator]()), protoOf(new Map()[Symbol.iterator]()),
   protoOf(new Set()[Symbol.iterator]()), protoOf(''[Symbol.iterator]()),
   protoOf(/a/[Symbol.matchAll]('a'))].forEach(harden);
  return seen.size;
})()"""
"""Freezes the global object and every object reachable from it (own properties, accessors
and prototypes), plus the intrinsics only reachable by calling something (iterator and
generator prototypes). Run in each new context before anything else."""


def _expression(source: str) -> str:
    return _WRAPPER.replace("@BODY@", f"(\n{source}\n)")


def _program(source: str) -> str:
    return _WRAPPER.replace("@BODY@", f"eval({json.dumps(source)})")


class ScriptFailure(enum.StrEnum):
    SYNTAX = "syntax"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY = "memory"


class ScriptError(Exception):
    """A condition that did not compile, threw, ran too long or used too much memory."""

    def __init__(self, kind: ScriptFailure, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Script:
    """A compiled condition; evaluate it with :meth:`ScriptEngine.evaluate`."""

    source: str
    wrapped: str
    program: bool = field(default=False, compare=False)


def _is_out_of_memory(text: str) -> bool:
    """QuickJS reports running out of memory as "out of memory", or, when it cannot even
    build the error, as an exception whose message is ``null`` or cannot be read."""
    return text in ("null", "") or "out of memory" in text or "Failed obtaining" in text


def _warn_if_shadowed() -> None:
    """Both ``quickjs`` and ``quickjs-ng`` install the ``quickjs`` module; when the old package
    is installed too, its extension may be the one imported, with its crash on out-of-memory."""
    try:
        version = importlib.metadata.version("quickjs")
    except importlib.metadata.PackageNotFoundError:
        return
    log.warning(
        "handlers.script.old_quickjs",
        version=version,
        hint="the quickjs package shadows quickjs-ng and can crash the process when a "
        "condition runs out of memory: pip uninstall quickjs, then pip install "
        "--force-reinstall quickjs-ng",
    )


class Runtime:
    """The QuickJS context and its compiled functions; use it only on the engine's thread
    (inside work handed to :meth:`ScriptEngine.run` or :meth:`ScriptEngine.submit`).

    A condition that times out or overflows the stack leaves the context usable, and it is
    kept. After one runs out of memory the context is replaced by a fresh one (hardened the
    same way); conditions are compiled again there on their next use, and the replacement is
    logged.
    """

    def __init__(self, timeout: float, memory_limit: int) -> None:
        import quickjs

        _warn_if_shadowed()
        self.quickjs = quickjs
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.functions: dict[str, Any] = {}
        self.replaced = 0
        self.context = self._new_context()

    def _new_context(self) -> Any:
        context = self.quickjs.Context()
        context.eval(_HARDEN)
        context.set_memory_limit(self.memory_limit)
        context.set_max_stack_size(_MAX_STACK)
        context.set_time_limit(self.timeout)
        return context

    def _out_of_memory(self) -> None:
        """Start a fresh context in place of one whose memory ran out."""
        self.functions = {}
        self.context = self._new_context()
        self.replaced += 1
        log.warning(
            "handlers.script.engine_replaced",
            reason="a condition ran out of memory",
            memory_limit=self.memory_limit,
            replaced=self.replaced,
        )

    def _eval(self, code: str) -> Any:
        """Compile code into the context, retrying once in a fresh one if memory is full."""
        try:
            return self.context.eval(code)
        except self.quickjs.JSException as exc:
            if not _is_out_of_memory(_first_line(exc)):
                raise
            self._out_of_memory()
            return self.context.eval(code)

    def compile(self, source: str) -> Script:
        expression = _expression(source)
        try:
            self.functions[expression] = self._eval(expression)
            return Script(source, expression)
        except self.quickjs.JSException:
            pass
        try:
            check = self._eval("(function(s){ new Function('$', s); })")
            check(source)
        except self.quickjs.JSException as exc:
            raise ScriptError(ScriptFailure.SYNTAX, _first_line(exc)) from None
        program = _program(source)
        self.functions[program] = self._eval(program)
        return Script(source, program, program=True)

    def evaluate(self, script: Script, payload_json: str) -> bool:
        try:
            function = self.functions.get(script.wrapped)
            if function is None:  # compiled in a context that was replaced since
                function = self.functions[script.wrapped] = self._eval(script.wrapped)
            return bool(function(payload_json))
        except self.quickjs.StackOverflow:
            raise ScriptError(ScriptFailure.ERROR, "stack overflow") from None
        except self.quickjs.JSException as exc:
            raise self._describe(exc) from None

    def _describe(self, exc: Exception) -> ScriptError:
        text = _first_line(exc)
        if text == "InternalError: interrupted":
            return ScriptError(
                ScriptFailure.TIMEOUT,
                f"condition ran longer than {self.timeout:g}s and was stopped",
            )
        if _is_out_of_memory(text):
            self._out_of_memory()
            return ScriptError(
                ScriptFailure.MEMORY,
                f"condition used more than the memory limit of {self.memory_limit} bytes",
            )
        return ScriptError(ScriptFailure.ERROR, text)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else ""


def _executor_with_stack(size: int) -> concurrent.futures.ThreadPoolExecutor:
    """A one-thread executor whose thread is started now, with a ``size``-byte stack."""
    previous = threading.stack_size()
    try:
        threading.stack_size(size)
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="conductor-events-js"
        )
        executor.submit(lambda: None).result()
    finally:
        threading.stack_size(previous)
    return executor


class ScriptEngine:
    """One QuickJS runtime on a thread of its own.

    Args:
        timeout: seconds one condition may run.
        memory_limit: bytes the runtime may allocate.
    """

    def __init__(self, timeout: float = 4.0, memory_limit: int = 32 << 20) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._executor = _executor_with_stack(_THREAD_STACK)
        self._runtime: Runtime | None = None

    def _on_thread(self, work: Callable[[Runtime], T]) -> Callable[[], T]:
        def call() -> T:
            if self._runtime is None:
                self._runtime = Runtime(self.timeout, self.memory_limit)
            return work(self._runtime)

        return call

    def submit(self, work: Callable[[Runtime], T]) -> T:
        """Run ``work`` on the engine's thread and wait for its result (blocking)."""
        return self._executor.submit(self._on_thread(work)).result()

    def start(self, work: Callable[[Runtime], T]) -> concurrent.futures.Future[T]:
        """Queue ``work`` on the engine's thread and return at once."""
        return self._executor.submit(self._on_thread(work))

    async def run(self, work: Callable[[Runtime], T], key: str | None = None) -> T:
        """Run ``work`` on the engine's thread without blocking the event loop. ``key`` (the
        event) matters to a pool of engines only."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._on_thread(work))

    def compile(self, source: str) -> Script:
        """Compile a condition (blocking; done when handlers load).

        Raises:
            ScriptError: a syntax error, with the engine's message.
        """
        return self.submit(lambda runtime: runtime.compile(source))

    def evaluate(self, script: Script, payload_json: str) -> bool:
        """Evaluate one condition against a payload's JSON text (blocking).

        Raises:
            ScriptError: the condition threw, timed out or ran out of memory.
        """
        return self.submit(lambda runtime: runtime.evaluate(script, payload_json))

    def close(self) -> None:
        """Stop the engine's thread (waits for a running condition to finish or time out)."""
        self._executor.shutdown(wait=True)


class ScriptRunner(Protocol):
    """Where conditions are evaluated: one :class:`ScriptEngine`, or a pool of them."""

    def submit(self, work: Callable[[Runtime], T]) -> T:
        """Run ``work`` on an engine's thread and wait for its result (blocking)."""
        ...

    async def run(self, work: Callable[[Runtime], T], key: str | None = None) -> T:
        """Run ``work`` on an engine's thread; ``key`` (the event) is what a pool keeps from
        taking every engine."""
        ...


def evaluate_on(runtime: Runtime, script: Script, payload_json: str) -> bool | ScriptError:
    """Evaluate on the engine's thread, returning a failure instead of raising it."""
    try:
        return runtime.evaluate(script, payload_json)
    except ScriptError as exc:
        return exc
