"""Errors a user can act on. The CLI prints their message without a traceback."""


class RecxploreError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(RecxploreError):
    """One or more configuration problems, all reported together."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class DataError(RecxploreError):
    """A raw data file is missing, malformed or empty after filtering."""


class ArtifactError(RecxploreError):
    """A cached artifact is missing, incomplete or does not match its inputs."""
