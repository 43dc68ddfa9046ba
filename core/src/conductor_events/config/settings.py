"""The settings models: the base every queue type's section derives from, and the core's own.

A plugin owns one model for ``conductor.event-queues.<type>.*``. Field names are snake_case;
the property keys are their kebab-case spelling (``batch_size`` is ``batch-size``), and Spring's
relaxed binding also accepts ``batchSize``. Secrets are :class:`pydantic.SecretStr`, so their
values never reach a log line, an error or ``config show``; entries of raw client maps whose
key names a secret are masked too (see :mod:`conductor_events.config.masking`). Durations use
:data:`~conductor_events.config.durations.Millis` or ``Seconds``.

Values come through pydantic-settings' sources, in the one priority order of
:meth:`SectionSettings.settings_customise_sources`. Its own environment, dotenv and secrets-dir
sources are not used: Spring's variable names (``CONDUCTOR_EVENTQUEUES_SQS_BATCHSIZE``) are
matched against the known keys instead (see :mod:`conductor_events.config.sources`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from conductor_events.config.masking import masked, masked_repr
from conductor_events.config.sources import sources_for


class SectionSettings(BaseSettings):
    """A properties section: ``conductor.<section>.*`` as one pydantic-settings model."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=False)

    section: ClassVar[str] = ""
    """The property prefix of this section, without the trailing dot. A queue type's model
    may leave it empty (it binds ``conductor.event-queues.<type name>``) or name another
    section under ``conductor.event-queues`` that several of its types share."""

    def __repr__(self) -> str:
        """The settings with secrets masked: ``SecretStr`` fields and the entries of raw client
        maps whose key names a secret (a map value has no secret type of its own)."""
        return masked_repr(self)

    def __str__(self) -> str:
        return masked_repr(self)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest priority first: init arguments, Spring environment variables, properties
        files (a later file or line wins), then the defaults pydantic-settings adds last.

        The environment and files are read only while the loader builds this section; settings
        built anywhere else (a test, an application's ``SqsSettings(batch_size=5)``) take their
        arguments and defaults and nothing from the user's files or environment.
        """
        sources = sources_for(settings_cls)
        if sources is None:
            return (init_settings,)
        return (init_settings, sources.environment, sources.files)


class QueueSettings(SectionSettings):
    """Base of every ``conductor.event-queues.<type>.*`` model.

    ``enabled`` defaults to false, as in Conductor: a backend is used only when its section
    says so. A plugin whose type should work out of the box (like ``local``) overrides it.
    """

    enabled: bool = Field(default=False, description="Use this queue type.")

    def summary(self) -> dict[str, Any]:
        """The settings as safe-to-log values (secrets, map entries included, masked)."""
        return {name: masked(getattr(self, name)) for name in type(self).model_fields}


class DefaultEventQueueSettings(SectionSettings):
    """``conductor.default-event-queue.*``: which queue type a sink without a colon uses."""

    section: ClassVar[str] = "conductor.default-event-queue"

    type: str | None = Field(
        default=None,
        description="Queue type for sinks and events written without a `type:` prefix.",
    )
