"""Looking for an earlier attempt's post in a platform's listing, page by page.

Reconciliation decides whether a post is sent again, so "not found" may only be said of a listing read back
past the attempt: newest first, until an item older than it; otherwise to the listing's end. A busy account
can push the attempt several pages down while a killed worker waits for its retry (twenty other posts in
half a minute are ordinary in a burst), so reading one page and answering "not there" would post it twice.
When the page budget runs out first, the answer is Unverifiable, and the result becomes `unconfirmed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.errors import Unverifiable

# (items of one page, the cursor of the next page or None at the end of the listing)
Page = tuple[list[dict[str, Any]], Any]

MAX_PAGES = 10


async def find_since(
    fetch: Callable[[Any], Awaitable[Page]],
    *,
    match: Callable[[dict[str, Any]], bool],
    created: Callable[[dict[str, Any]], float | None],
    since: float,
    newest_first: bool,
    what: str,
    max_pages: int = MAX_PAGES,
) -> dict[str, Any] | None:
    """The oldest item created at or after `since` that `match`es, or None when there is none.

    `fetch(cursor)` reads one page (cursor None: the first). `created(item)` is the item's creation time in
    epoch seconds, already allowing for the platform's timestamp precision. `what` names the listing in the
    Unverifiable message."""
    hits: list[tuple[float, int, dict[str, Any]]] = []
    cursor = None
    seen = 0
    for _ in range(max_pages):
        items, cursor = await fetch(cursor)
        past_since = False
        for item in items:
            seen += 1
            at = created(item)
            if at is not None and at < since:
                past_since = True
                continue
            if match(item):
                # Ties on the timestamp go by position: further down a newest-first listing is older.
                hits.append((at or 0.0, -seen if newest_first else seen, item))
        if cursor is None or (newest_first and past_since):
            break
    else:
        if not hits:
            raise Unverifiable(f"Too many recent items in {what} to be sure the earlier attempt did not land")
    if not hits:
        return None
    # The oldest match is the earlier attempt; a later copy was posted by someone else's hand.
    return min(hits, key=lambda hit: hit[:2])[2]
