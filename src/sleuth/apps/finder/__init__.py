"""The finder app: from an artwork page to the posts of the artist that contain it."""
