"""Custom search attributes, so operators can filter workflows in the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

WORKSPACE = SearchAttributeKey.for_keyword("HeraldWorkspace")
STATUS = SearchAttributeKey.for_keyword("HeraldStatus")
PLATFORMS = SearchAttributeKey.for_keyword_list("HeraldPlatforms")
LIVEMODE = SearchAttributeKey.for_bool("HeraldLivemode")

ALL = (WORKSPACE, STATUS, PLATFORMS, LIVEMODE)

# The `--search-attribute` flags of `temporal server start-dev`.
DEV_SERVER_FLAGS = {"HeraldWorkspace": "Keyword", "HeraldStatus": "Keyword",
                    "HeraldPlatforms": "KeywordList", "HeraldLivemode": "Bool"}
