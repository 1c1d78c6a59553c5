"""Errors the kit raises for bad input: one line saying what is wrong and how to fix it."""


class MinbertError(Exception):
    """Base class: the CLI prints these as a one-line message instead of a traceback."""


class WeightsError(MinbertError):
    """Pretrained weights are missing, malformed, or do not fit the model."""


class DownloadError(MinbertError):
    """A download failed or a downloaded file does not match its checksum."""


class DataError(MinbertError):
    """A data file is missing, is not in the expected format, or cannot be read."""


class ConfigError(MinbertError, ValueError):
    """An unknown experiment, budget or option value."""


class TrainingInterrupted(MinbertError):
    """Ctrl-C during training: the message says which step the same command resumes from."""
