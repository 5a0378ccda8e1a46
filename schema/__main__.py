"""``python -m schema``: rewrite ``schema/schema.graphql`` from the code."""

from schema import SDL_PATH, export_sdl

export_sdl()
print(f"wrote {SDL_PATH}")
