"""AAC from MPEG-TS/PS (ADTS) into mp4/mov/mkv: the same audio frames, headers stripped, config up front.

In a transport stream every AAC frame carries a 7-byte ADTS header and the stream has no codec
configuration. mp4 and Matroska store raw AAC frames and one AudioSpecificConfig in the track header. FFmpeg's
muxers insert ``aac_adtstoasc`` on their own, but that filter only learns the config from the first audio
packet, after the header is written: a seekable file gets it patched in later, a non-seekable sink (an S3
upload of Matroska) cannot go back and fails ("Invalid argument"). So the config is built from the stream's
parameters before the header, and each packet goes through ``aac_adtstoasc`` (PyAV's
``BitStreamFilterContext``), which removes the ADTS header and leaves the AAC frame's bytes as they were.
"""

from __future__ import annotations

import av

# MPEG-4 audio object types by the profile name FFmpeg reports. HE-AAC in ADTS is signalled implicitly: the
# header says AAC-LC at the core (half) sample rate, and HE-AAC v2 at one channel (parametric stereo).
_OBJECT_TYPES = {"Main": 1, "LC": 2, "SSR": 3, "LTP": 4, "HE-AAC": 2, "HE-AACv2": 2}
_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def audio_specific_config(profile: str | None, sample_rate: int, channels: int) -> bytes | None:
    """The 2-byte AudioSpecificConfig (ISO 14496-3 1.6.2.1) an ADTS header of this stream describes; None
    when the demuxer could not tell the rate or channels (a stream without packets)."""
    if profile in ("HE-AAC", "HE-AACv2"):
        sample_rate //= 2
    if profile == "HE-AACv2":
        channels = 1
    if sample_rate not in _RATES or not 0 < channels < 8:
        return None
    config = _OBJECT_TYPES.get(profile or "LC", 2) << 11 | _RATES.index(sample_rate) << 7 | channels << 3
    return config.to_bytes(2, "big")


class AdtsToAsc:
    """Passes one ADTS AAC stream's packets into an mp4/mov/mkv output stream as raw AAC."""

    def __init__(self, source: av.stream.Stream, output: av.stream.Stream) -> None:
        ctx = source.codec_context
        config = audio_specific_config(ctx.profile, ctx.sample_rate, ctx.channels)
        if config is not None:
            output.codec_context.extradata = config
        self._bsf = av.BitStreamFilterContext("aac_adtstoasc", source)
        self._output = output
        self._time_base = source.time_base

    @staticmethod
    def needed(source: av.stream.Stream) -> bool:
        """AAC without a codec configuration: ADTS (MPEG-TS, MPEG-PS, raw .aac)."""
        ctx = source.codec_context
        return source.type == "audio" and ctx is not None and ctx.name == "aac" and not ctx.extradata

    def filter(self, packet: av.Packet) -> list[av.Packet]:
        """Raw AAC packets for the output stream, same timestamps.

        They are fresh packets without side data: the filter attaches the config it derived to the first one
        as "new extradata", and Matroska, handed that after a header that already has a config, rewrites the
        track header in place with no room reserved and corrupts the file (seen with FFmpeg 8.1)."""
        out = []
        for filtered in self._bsf.filter(packet):
            raw = av.Packet(bytes(filtered))
            raw.pts, raw.dts, raw.duration = filtered.pts, filtered.dts, filtered.duration
            raw.time_base = self._time_base
            raw.stream = self._output
            out.append(raw)
        return out
