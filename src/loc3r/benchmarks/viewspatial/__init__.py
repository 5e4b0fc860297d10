"""ViewSpatial-Bench: perspective-taking questions on images, from the camera's and from a person's view."""
