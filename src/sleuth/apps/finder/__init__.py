"""The finder: from an artwork's page to the posts of its artist that contain it."""
