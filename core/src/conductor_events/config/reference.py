"""The configuration-key reference of a settings model, as a Markdown table for the docs.

docs/ embed these tables between generated-block markers, and a test fails when a field is
added, renamed or re-described without the docs following.
"""

from __future__ import annotations

from conductor_events.config.binding import known_keys
from conductor_events.config.settings import SectionSettings
from conductor_events.config.show import render_value


def reference_table(model: type[SectionSettings], prefix: str | None = None) -> str:
    """Rows of ``| key | default | description |`` for every key of a section."""
    prefix = prefix or model.section
    lines = ["| key | default | description |", "|---|---|---|"]
    for suffix, shape in known_keys(model):
        node: type[SectionSettings] = model
        parts = suffix.split(".")
        for part in parts[:-1]:
            node = node.model_fields[part.replace("-", "_")].annotation  # type: ignore[assignment]
        name = parts[-1].replace("-", "_")
        field = node.model_fields[name]
        if shape.kind in ("map", "model-map"):
            key, default = f"{prefix}.{suffix}.*", "(none)"
        else:
            key = f"{prefix}.{suffix}"
            value = None if field.is_required() else field.get_default(call_default_factory=True)
            default = "(required)" if field.is_required() else render_value(value) or "(unset)"
            if shape.secret and default not in ("(required)", "(unset)"):
                default = "(secret)"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | `{default}` | {description} |")
    return "\n".join(lines)
