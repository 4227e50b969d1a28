"""What the Data API accepts: the dataset floor, window limits and app-ranking filters.

Pure constants and checks, so that a typo fails when a DAG is parsed, not when a run spends a request.
"""

from __future__ import annotations

from datetime import date

from airflow_provider_openrouter.exceptions import InvalidParameterError

#: The first day of every dataset; earlier days do not exist.
DATASET_FLOOR = date(2025, 1, 1)
#: The longest window (in days, inclusive) one request may ask for.
MAX_WINDOW_DAYS = 366
#: The reserved permaslug of the row that sums every model outside the daily top 50.
OTHER_PERMASLUG = "other"
#: Models ranked per day before the ``other`` row.
TOP_MODELS_PER_DAY = 50

APP_SORTS = ("popular", "trending")
APP_PAGE_LIMIT = 100
APP_MAX_OFFSET = 100
#: ``offset`` 0-100 plus ``limit`` 1-100: no more apps than this are reachable.
APP_CEILING = APP_MAX_OFFSET + APP_PAGE_LIMIT

#: Marketplace subcategories and the category group each belongs to.
SUBCATEGORY_CATEGORY: dict[str, str] = {
    "cli-agent": "coding",
    "ide-extension": "coding",
    "cloud-agent": "coding",
    "programming-app": "coding",
    "native-app-builder": "coding",
    "creative-writing": "creative",
    "video-gen": "creative",
    "image-gen": "creative",
    "audio-gen": "creative",
    "roleplay": "entertainment",
    "game": "entertainment",
    "writing-assistant": "productivity",
    "general-chat": "productivity",
    "personal-agent": "productivity",
    "legal": "productivity",
}
APP_CATEGORIES = ("coding", "creative", "productivity", "entertainment")

CITATION_MODELS = "Source: OpenRouter (openrouter.ai/rankings), as of {as_of}."
CITATION_APPS = "Source: OpenRouter (openrouter.ai/apps), as of {as_of}."
LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); attribute OpenRouter and keep the meta block."
CAVEATS = (
    "Public OpenRouter traffic only, not global model usage. Token counts come from each upstream "
    "provider's own tokenizer, so tokens are not comparable across providers."
)


def validate_app_params(
    sort: str, category: str | None, subcategory: str | None, max_apps: int
) -> None:
    """Raise :class:`InvalidParameterError` naming the first bad app-rankings parameter."""
    if sort not in APP_SORTS:
        raise InvalidParameterError(f"sort={sort!r} is not supported; use one of {', '.join(APP_SORTS)}.")
    if category is not None and category not in APP_CATEGORIES:
        raise InvalidParameterError(
            f"category={category!r} is not an OpenRouter app category; use one of "
            f"{', '.join(APP_CATEGORIES)} or None for all apps."
        )
    if subcategory is not None:
        parent = SUBCATEGORY_CATEGORY.get(subcategory)
        if parent is None:
            raise InvalidParameterError(
                f"subcategory={subcategory!r} is not an OpenRouter app subcategory; use one of "
                f"{', '.join(SUBCATEGORY_CATEGORY)} or None."
            )
        if category is not None and parent != category:
            raise InvalidParameterError(
                f"subcategory={subcategory!r} belongs to category {parent!r}, not {category!r}; "
                f"set category={parent!r} or leave it None."
            )
    if isinstance(max_apps, bool) or not isinstance(max_apps, int) or not 1 <= max_apps <= APP_CEILING:
        raise InvalidParameterError(
            f"max_apps={max_apps!r} must be an integer from 1 to {APP_CEILING} "
            "(the API reaches no app beyond rank 200)."
        )
