"""Exceptions raised by eegcodec.

Every error a user can cause (bad input file, wrong model, damaged archive) is an
:class:`EegcodecError` whose message is one line that names what was given and
what was expected. The CLI prints that line and exits non-zero; only ``--debug``
shows a traceback.
"""


class EegcodecError(Exception):
    """Base class: a problem with the user's input, not a bug in eegcodec."""


class UnsupportedFormatError(EegcodecError):
    """The file extension is not one eegcodec can read or write."""


class CorruptFileError(EegcodecError):
    """An .eegc file is damaged, truncated, or not an .eegc file at all."""


class ModelMismatchError(EegcodecError):
    """An .eegc file was made with a different model than the one given."""


class InvalidSignalError(EegcodecError):
    """The recording holds values the codec cannot represent (e.g. infinities)."""


class OutputExistsError(EegcodecError):
    """An output file exists and replacing it was not asked for.

    The message speaks the API (``overwrite=True``); :meth:`cli_message` says it in the command
    line's words (``--force``), which is what the CLI prints."""

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(f"output exists: {path} (pass overwrite=True to replace it)")

    def cli_message(self) -> str:
        return f"output exists: {self.path} (use --force to replace it)"
