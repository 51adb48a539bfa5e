"""What each platform accepts, declared once.

The same declaration drives API validation, `GET /v1/platforms/capabilities`
and the docs, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from adapters.text import COUNTERS

if TYPE_CHECKING:  # pragma: no cover
    from adapters.base import PartDraft

CaptionUnit = Literal["weighted", "graphemes", "utf16", "utf8_bytes", "emoji_bytes", "characters"]


@dataclass(frozen=True)
class Issue:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class MediaLimits:
    max_items: int
    image_types: tuple[str, ...] = ()
    video_types: tuple[str, ...] = ()
    max_image_bytes: int | None = None
    max_video_bytes: int | None = None
    max_video_seconds: float | None = None
    max_videos: int = 1
    # False where a post holds either images or one video, never both (X, Bluesky).
    allow_mixed: bool = False
    required: bool = False  # YouTube, TikTok, Pinterest and Instagram cannot post text alone

    def accepts(self, content_type: str) -> bool:
        return content_type in self.image_types or content_type in self.video_types


@dataclass(frozen=True)
class Capabilities:
    caption_limit: int
    caption_unit: CaptionUnit
    media: MediaLimits
    threads: bool = False
    first_comment: bool = False
    # Extra limit in bytes some platforms apply on top (Bluesky: 3000 bytes).
    caption_byte_limit: int | None = None
    # pydantic model of the accepted platform_options; unknown keys are rejected.
    options_model: type[pydantic.BaseModel] | None = None
    notes: tuple[str, ...] = field(default=())

    def caption_length(self, text: str) -> int:
        return COUNTERS[self.caption_unit](text)

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues: list[Issue] = []
        p = f"{field_prefix}." if field_prefix else ""
        length = self.caption_length(draft.text or "")
        if length > self.caption_limit:
            issues.append(
                Issue(
                    f"{p}caption",
                    "caption_too_long",
                    f"Caption is {length} {_unit_word(self.caption_unit)}, max is {self.caption_limit}",
                )
            )
        if self.caption_byte_limit and len((draft.text or "").encode()) > self.caption_byte_limit:
            issues.append(
                Issue(f"{p}caption", "caption_too_long", f"Caption exceeds {self.caption_byte_limit} bytes")
            )
        issues.extend(self.validate_media([m.content_type for m in draft.media], field_prefix=p))
        if not draft.text and not draft.media and not draft.is_comment:
            issues.append(Issue(f"{p}caption", "caption_required", "A post needs a caption or media"))
        issues.extend(self.validate_options(draft.options, field_prefix=p))
        return issues

    def validate_media(
        self, content_types: list[str], *, field_prefix: str, sizes: list[int | None] | None = None
    ) -> list[Issue]:
        issues: list[Issue] = []
        m = self.media
        if len(content_types) > m.max_items:
            issues.append(
                Issue(f"{field_prefix}media", "too_many_media", f"At most {m.max_items} media items allowed")
            )
        if m.required and not content_types:
            issues.append(Issue(f"{field_prefix}media", "media_required", "This platform requires media"))
        videos = [t for t in content_types if t in m.video_types]
        images = [t for t in content_types if t in m.image_types]
        if len(videos) > m.max_videos:
            issues.append(
                Issue(f"{field_prefix}media", "too_many_videos", f"At most {m.max_videos} video per post")
            )
        if videos and images and not m.allow_mixed:
            issues.append(
                Issue(f"{field_prefix}media", "mixed_media", "Images and video cannot be mixed in one post")
            )
        for i, ct in enumerate(content_types):
            if not m.accepts(ct):
                issues.append(
                    Issue(f"{field_prefix}media[{i}]", "unsupported_media_type", f"{ct} is not accepted")
                )
            size = sizes[i] if sizes and i < len(sizes) else None
            limit = m.max_video_bytes if ct in m.video_types else m.max_image_bytes
            if size is not None and limit is not None and size > limit:
                issues.append(
                    Issue(f"{field_prefix}media[{i}]", "media_too_large", f"{size} bytes, max is {limit}")
                )
        return issues

    def validate_options(self, options: dict[str, Any], *, field_prefix: str) -> list[Issue]:
        if self.options_model is None:
            if options:
                return [
                    Issue(f"{field_prefix}platform_options.{k}", "unknown_option", "Unknown option")
                    for k in options
                ]
            return []
        try:
            self.options_model.model_validate(options or {})
        except pydantic.ValidationError as exc:
            return [
                Issue(
                    f"{field_prefix}platform_options" + "".join(f".{x}" for x in err["loc"]),
                    "unknown_option" if err["type"] == "extra_forbidden" else "invalid_option",
                    err["msg"],
                )
                for err in exc.errors()
            ]
        return []

    def describe(self) -> dict[str, Any]:
        """The public, JSON form used by the capabilities endpoints."""
        m = self.media
        return {
            "caption": {
                "max_length": self.caption_limit,
                "unit": self.caption_unit,
                "max_bytes": self.caption_byte_limit,
            },
            "media": {
                "max_items": m.max_items,
                "max_videos": m.max_videos,
                "image_types": list(m.image_types),
                "video_types": list(m.video_types),
                "max_image_bytes": m.max_image_bytes,
                "max_video_bytes": m.max_video_bytes,
                "max_video_seconds": m.max_video_seconds,
                "allow_mixed": m.allow_mixed,
                "required": m.required,
            },
            "threads": self.threads,
            "first_comment": self.first_comment,
            "options": self.options_model.model_json_schema() if self.options_model else None,
            "notes": list(self.notes),
        }


def _unit_word(unit: CaptionUnit) -> str:
    return {
        "weighted": "weighted characters",
        "graphemes": "graphemes",
        "utf16": "UTF-16 units",
        "utf8_bytes": "bytes",
        "emoji_bytes": "characters (emoji counted in bytes)",
        "characters": "characters",
    }[unit]
