"""The shipped models: weights (``NAME.pth``), code priors (``NAME.prior.npz``) and model cards
(``NAME.md``) in this folder. :mod:`eegcodec.backends.registry` loads and lists them."""

from pathlib import Path

#: This folder.
HERE = Path(__file__).parent
#: Shipped models: name -> file in this folder.
SHIPPED = {
    "dac-small": "dac-small.pth",
    "mc-small": "mc-small.pth",
    "mc-320": "mc-320.pth",
    "audio-dac-small": "audio-dac-small.pth",
}
#: Names that stand for another name.
ALIASES = {"default": "mc-small"}
