"""streamup.pipeline.remux on a real clip: the packet scan a plan reads, a segment's header, and ``stitch``
putting video pieces (stream-copied into Matroska, as segments are) and the source's audio back into one
output, judged by ffprobe/ffmpeg."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamup.errors import OutputError
from streamup.pipeline.probe import probe
from streamup.pipeline.remux import Piece, header_of, stitch, video_packets
from tests.conftest import media


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s, 160x90 x264 with B-frames and a 1 s GOP (three keyframes), the shared clip's AAC copied."""
    out = tmp_path_factory.mktemp("remux") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                    str(media("main_h264_aac_640x360.mp4")), "-t", "3", "-vf", "scale=160:90",
                    "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "24", "-keyint_min", "24",
                    "-sc_threshold", "0", "-c:a", "copy", str(out)], check=True)
    return out


def _ffprobe(path: Path, stream: str, entries: str) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", entries,
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return [line.strip().rstrip(",") for line in out.splitlines() if line.strip()]


def _audio_md5(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f", "md5",
                           "-"], check=True, capture_output=True, text=True).stdout.strip()


def _scan(clip: Path) -> tuple[Fraction, list[int], list[int]]:
    with video_packets(str(clip)) as video:
        assert not video.interlaced
        assert video.pixel_format.name == "yuv420p"
        packets = list(video.packets())
        return video.time_base, sorted(p for p, _ in packets), sorted(p for p, k in packets if k)


def _pieces(clip: Path, folder: Path, pts: list[int], keys: list[int]) -> list[Piece]:
    """The clip's video cut at every keyframe, stream-copied into video-only Matroska."""
    pieces = []
    with av.open(str(clip)) as source:
        video = source.streams.video[0]
        out = stream = None
        for packet in source.demux(video):
            if not packet.size:
                continue
            if packet.is_keyframe:
                if out is not None:
                    out.close()
                index = len(pieces)
                path = folder / f"piece-{index}.mkv"
                lo, hi = keys[index], keys[index + 1] if index + 1 < len(keys) else None
                mine = tuple(p for p in pts if p >= lo and (hi is None or p < hi))
                pieces.append(Piece(index, str(path), mine))
                out = av.open(str(path), mode="w")
                stream = out.add_stream_from_template(video)
            assert out is not None and stream is not None
            packet.stream = stream
            out.mux(packet)
        assert out is not None
        out.close()
    return pieces


def test_the_packet_scan_finds_every_frame_and_keyframe(clip: Path) -> None:
    time_base, pts, keys = _scan(clip)
    frames = _ffprobe(clip, "v:0", "stream=nb_frames")
    assert len(pts) == int(frames[0]) == 72  # 3 s at 24 fps
    assert len(keys) == 3 and keys[0] == pts[0]
    assert [round(float((k - keys[0]) * time_base), 3) for k in keys] == [0.0, 1.0, 2.0]
    assert probe(str(clip)).duration == pytest.approx(3.0, abs=0.05)


def test_stitch_puts_the_pieces_and_the_source_audio_back_together(clip: Path, tmp_path: Path) -> None:
    time_base, pts, keys = _scan(clip)
    pieces = _pieces(clip, tmp_path, pts, keys)
    assert [len(p.pts) for p in pieces] == [24, 24, 24]
    codec, digest, depth = header_of(pieces[0].uri)
    assert codec == "h264" and depth > 0  # B-frames: decode times must be rebuilt
    assert {header_of(p.uri)[1] for p in pieces} == {digest}

    out = tmp_path / "stitched.mp4"
    stitched = stitch(str(clip), str(out), pieces, time_base, depth, metadata={"job": "t"})

    assert stitched.frames == 72
    assert stitched.bytes_written == out.stat().st_size > 0
    assert (stitched.output.width, stitched.output.height) == (160, 90)
    assert _ffprobe(out, "v:0", "stream=codec_name") == ["h264"]
    assert len(_ffprobe(out, "v:0", "packet=pts")) == 72
    assert sorted(_ffprobe(out, "v:0", "frame=pts_time")) == sorted(_ffprobe(clip, "v:0", "frame=pts_time"))
    assert _audio_md5(out) == _audio_md5(clip)
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
                            capture_output=True, text=True, check=True)
    assert decode.stderr == ""


def test_a_piece_with_a_frame_the_plan_lacks_publishes_nothing(clip: Path, tmp_path: Path) -> None:
    time_base, pts, keys = _scan(clip)
    pieces = _pieces(clip, tmp_path, pts, keys)
    short = [pieces[0], Piece(1, pieces[1].uri, pieces[1].pts[:-1]), pieces[2]]
    out = tmp_path / "stitched.mp4"
    with pytest.raises(OutputError, match="segment 1"):
        stitch(str(clip), str(out), short, time_base, header_of(pieces[0].uri)[2])
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["piece-0.mkv", "piece-1.mkv", "piece-2.mkv"]
