"""Codec backends: the :class:`~eegcodec.backends.base.Codec` contract (``base``), weights files
(``weights``), the registry of backends and models (``registry``: ``load_codec``,
``list_models``, ``resolve_model``) and one package per backend (``dac``, ``dac_mc``,
``wavtokenizer``: network, files, codec, trainable)."""
