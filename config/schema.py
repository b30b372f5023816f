"""OpenAPI generation: names components after their view, as our serializers nest inside views."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """`CheckInView.OutputSerializer` becomes the component `CheckInOutput`, not one of many `Output`s."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        outer = type(serializer).__qualname__.split(".")
        if len(outer) > 1:
            owner = outer[0].removesuffix("View")
            if not name.startswith(owner):
                name = owner + name
        return name
