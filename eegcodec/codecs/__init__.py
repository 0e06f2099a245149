"""Codec backends behind one interface (:class:`eegcodec.codecs.base.Codec`)."""
