"""Test tools for event handlers: the Conductor API double and a bounded consume loop. Not
imported by the rest of the package."""
