"""How this plugin hands a received message to the core: ``new_delivery(message, attempt,
handle)``, the handle being one of this plugin's :class:`DeliveryHandle` subclasses.

The core's queue contract builds every delivery as ``Delivery(message, attempt, handle)``
from a backend's ``conductor_events.queues.DeliveryHandle``. Cores from before that contract
(where backends subclassed ``Delivery`` and implemented ``_ack``, ``_nack``, ...) get the same
handles through a small adapter built here, so this package runs on either; the adapter goes
once every supported core has the handle contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from conductor_events import queues
from conductor_events.messages import Message

HANDLE_CONTRACT = hasattr(queues, "DeliveryHandle")
"""Whether the installed core builds deliveries from handles."""

_Delivery: Any = queues.Delivery


class _Handle(ABC):
    """The broker calls that settle one message (the core's ``DeliveryHandle``)."""

    __slots__ = ()

    @abstractmethod
    async def ack(self) -> None: ...

    @abstractmethod
    async def nack(self, delay: float, reason: str | None) -> None: ...

    @abstractmethod
    async def extend(self, seconds: float) -> None: ...

    async def dead_letter(self, reason: str) -> None:
        raise NotImplementedError(f"{type(self).__name__}: no dead-letter destination")

    async def release(self) -> None:
        await self.nack(0.0, None)


if TYPE_CHECKING:
    DeliveryHandle = _Handle
else:
    DeliveryHandle = getattr(queues, "DeliveryHandle", _Handle)


async def _ack(self: Any) -> None:
    await self.handle.ack()


async def _nack(self: Any, delay: float, reason: str | None) -> None:
    await self.handle.nack(delay, reason)


async def _extend(self: Any, seconds: float) -> None:
    await self.handle.extend(seconds)


async def _dead_letter(self: Any, reason: str) -> None:
    await self.handle.dead_letter(reason)


async def _release(self: Any) -> None:
    await self.handle.release()


def _adapter_init(
    self: Any, message: Message, attempt: int, handle: Any, dead_letter_reason: str | None
) -> None:
    _Delivery.__init__(self, message, attempt, dead_letter_reason=dead_letter_reason)
    self.handle = handle


_Adapter: Any = (
    None
    if HANDLE_CONTRACT
    else type(
        "HandleDelivery",
        (queues.Delivery,),
        {
            "__slots__": ("handle",),
            "__init__": _adapter_init,
            "_ack": _ack,
            "_nack": _nack,
            "_extend": _extend,
            "_dead_letter": _dead_letter,
            "_release": _release,
        },
    )
)


def new_delivery(
    message: Message,
    attempt: int,
    handle: DeliveryHandle,
    *,
    dead_letter_reason: str | None = None,
) -> queues.Delivery:
    """The core's delivery of ``message``, settled through ``handle``."""
    if _Adapter is None:
        built: queues.Delivery = _Delivery(
            message, attempt, handle, dead_letter_reason=dead_letter_reason
        )
    else:
        built = _Adapter(message, attempt, handle, dead_letter_reason)
    return built
