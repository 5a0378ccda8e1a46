"""``python -m kassa.schema``: rewrite ``kassa/schema.graphql`` from the code."""

from kassa.schema import SDL_PATH, export_sdl

export_sdl()
print(f"wrote {SDL_PATH}")
