"""Settings for the whole suite."""

from hypothesis import settings

# The suite runs on a 2-core machine shared with other test runs: a slow moment
# there is not a bug, so property tests have no per-example deadline.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")
