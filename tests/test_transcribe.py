"""`asr transcribe` and the Python API: formats, rates, channels, long audio, bad files, runtimes, output."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import demo_flacs, write_sentences_with_pauses, write_tone
from typer.testing import CliRunner

from asr.cli import app
from asr.errors import AsrError
from asr.inference import TFLITE_FILE, choose_runtime, litert_available
from asr.output import cues, format_transcript, timestamp
from asr.recognize import Segment, Transcript, Word
from asr.transcribe import expand_inputs

runner = CliRunner()


@pytest.fixture(scope="module")
def recognizer(tiny_bundle):
    from asr.recognize import Recognizer

    return Recognizer(tiny_bundle, runtime="tf")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """~6 s of demo speech (several utterances back to back) at 16 kHz mono."""
    audio = np.concatenate([sf.read(str(p), dtype="float32")[0] for p, _ in demo_flacs(5, "test")])
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), audio, 16000)
    return path


def check_transcript(t: Transcript, seconds: float) -> None:
    """Internal consistency of one result: duration, word order and ranges, text = words."""
    assert t.duration == pytest.approx(seconds, abs=0.01)
    assert " ".join(w.word for w in t.words) == " ".join(t.text.split())
    for a, b in zip(t.words, t.words[1:]):
        assert a.end <= b.start
    assert all(0 <= w.start < w.end <= seconds + 0.05 and 0 <= w.confidence <= 1 for w in t.words)


def test_expand_inputs(tmp_path):
    for name in ("b.wav", "a.flac", "sub/c.ogg", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    paths, unmatched = expand_inputs([str(tmp_path), str(tmp_path / "*.wav"), str(tmp_path / "none*.wav"),
                                      "missing.wav"])
    assert paths == [str(tmp_path / "a.flac"), str(tmp_path / "b.wav"), str(tmp_path / "sub/c.ogg"),
                     str(tmp_path / "b.wav"), "missing.wav"]
    assert unmatched == [(str(tmp_path / "none*.wav"), "no files match this pattern")]


def test_cues_and_formats():
    words = [Word("one", 0.0, 0.4, 0.9), Word("two", 0.5, 0.9, 0.8), Word("three", 7.0, 7.5, 0.7)]
    long = (Segment(0.0, 7.5, "one two three", tuple(words)),)
    assert cues(long) == [(0.0, 0.9, "one two"), (7.0, 7.5, "three")]  # > 6 s: new cue
    paused = (Segment(0.0, 0.4, "one", tuple(words[:1])), Segment(0.5, 0.9, "two", tuple(words[1:2])))
    assert cues(paused) == [(0.0, 0.4, "one"), (0.5, 0.9, "two")]  # never across a pause, however short the cue
    t = Transcript("a.wav", "one two three", 7.5, tuple(words), long)
    srt = format_transcript(t, "srt")
    assert srt.splitlines()[:3] == ["1", "00:00:00,000 --> 00:00:00,900", "one two"]
    assert "00:00:07,000 --> 00:00:07,500" in srt
    assert format_transcript(t, "vtt").splitlines()[:4] == ["WEBVTT", "", "00:00:00.000 --> 00:00:00.900", "one two"]
    assert format_transcript(t, "tsv").splitlines() == ["start\tend\ttext", "0\t900\tone two", "7000\t7500\tthree"]
    one = Transcript("a.wav", "one", 1.0, words[:1], (Segment(0.0, 0.4, "one", words[:1]),))
    assert json.loads(format_transcript(one, "json")) == {
        "path": "a.wav", "text": "one", "duration": 1.0, "segments": [{"start": 0.0, "end": 0.4, "text": "one"}],
        "words": [{"word": "one", "start": 0.0, "end": 0.4, "confidence": 0.9}]}


@pytest.mark.parametrize("rate,channels,suffix", [(8000, 1, "wav"), (48000, 2, "flac"), (22050, 1, "ogg"),
                                                   (44100, 6, "wav")])
def test_any_rate_channels_and_format(recognizer, speech, tmp_path, rate, channels, suffix):
    import soxr

    audio, _ = sf.read(str(speech), dtype="float32")
    audio = soxr.resample(audio, 16000, rate)
    path = tmp_path / f"x.{suffix}"
    sf.write(str(path), np.repeat(audio[:, None], channels, axis=1), rate)
    check_transcript(recognizer.transcribe(path), len(audio) / rate)


def test_identical_channels_transcribe_like_mono(recognizer, speech, tmp_path):
    audio, _ = sf.read(str(speech), dtype="float32")
    sf.write(str(tmp_path / "stereo.wav"), np.stack([audio, audio], axis=1), 16000)
    assert recognizer.transcribe(tmp_path / "stereo.wav").words == recognizer.transcribe(speech).words


def test_long_audio_chunks_line_up_with_whole_file(recognizer, speech):
    """Chunked posteriors have the whole-file frame count and nearly the same values (context each side)."""
    from asr.audio import compute_mfcc, load_audio
    from asr.recognize import Recognizer

    audio = load_audio(speech, 16000)
    whole = recognizer.predictor([compute_mfcc(audio, recognizer.info.features)])[0]
    chunked_rec = Recognizer(recognizer.info.path, runtime="tf", chunk_seconds=4.5)
    chunked = chunked_rec._probs(audio)  # 0.5 s kept per chunk: many seams
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).mean() < 0.02
    assert np.mean(chunked.argmax(1) == whole.argmax(1)) > 0.95
    check_transcript(chunked_rec.transcribe(speech), len(audio) / 16000)


def test_bad_files_are_skipped_and_reported(recognizer, speech, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    paths = [str(tmp_path / "bad.wav"), str(speech), str(tmp_path / "empty.wav"), str(tmp_path / "missing.flac")]
    results = list(recognizer.transcribe_many(paths))
    assert [p for p, _ in results] == paths
    kinds = [type(r) for _, r in results]
    assert kinds == [AsrError, Transcript, AsrError, AsrError]
    with pytest.raises(AsrError, match="empty audio"):
        recognizer.transcribe(tmp_path / "empty.wav")


def test_cli_transcribe_many_with_a_bad_file(tiny_bundle, speech, tmp_path):
    (tmp_path / "bad.flac").write_bytes(b"fLaC junk")
    result = runner.invoke(app, ["transcribe", "-m", str(tiny_bundle), str(speech), str(tmp_path / "bad.flac"),
                                 "--json", "--runtime", "tf"])
    assert result.exit_code == 1
    assert f"skipped {tmp_path / 'bad.flac'}:" in result.output
    line = json.loads(result.output.splitlines()[0])
    assert line["path"] == str(speech) and {"text", "duration", "words"} <= set(line)


def test_cli_transcribe_srt_to_output_dir(tiny_bundle, speech, tmp_path):
    result = runner.invoke(app, ["transcribe", "-m", str(tiny_bundle), str(speech.parent), "--format", "srt",
                                 "--output-dir", str(tmp_path / "out"), "--runtime", "tf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "speech.srt").is_file()
    bad = runner.invoke(app, ["transcribe", "-m", str(tiny_bundle), str(speech), "--format", "doc"])
    assert bad.exit_code == 2 and "--format 'doc'" in bad.output


def test_output_paths_never_share_a_file(tmp_path):
    from asr.output import output_paths

    out = tmp_path / "out"
    flat = [str(tmp_path / "in" / n) for n in ("a/x.wav", "b/y.flac")]
    assert output_paths(flat, out, "txt") == {flat[0]: out / "x.txt", flat[1]: out / "y.txt"}  # as whisper names
    clash = [str(tmp_path / "in" / n) for n in ("a/x.wav", "b/x.wav", "a/x.flac", "a/y.wav", "b/x.wav")]
    assert output_paths(clash, out, "srt") == {clash[0]: out / "a" / "x.wav.srt", clash[1]: out / "b" / "x.srt",
                                               clash[2]: out / "a" / "x.flac.srt", clash[3]: out / "a" / "y.srt"}
    weird = [str(tmp_path / n) for n in ("x.wav", "x.flac", "x.wav.mp3")]  # x.wav.txt twice: refused, up front
    with pytest.raises(AsrError, match=r"--output-dir: .*x\.wav and .*x\.wav\.mp3 would both be written to"):
        output_paths(weird, out, "txt")


def test_cli_output_dir_keeps_every_result(tiny_bundle, tmp_path):
    files = [write_tone(tmp_path / "in" / name, seconds=0.5 + 0.1 * k)
             for k, name in enumerate(("a/x.wav", "b/x.wav", "a/x.flac"))]
    out = tmp_path / "out"
    result = runner.invoke(app, ["transcribe", "-m", str(tiny_bundle), *map(str, files), "--format", "json",
                                 "--output-dir", str(out), "--runtime", "tf"])
    assert result.exit_code == 0, result.output
    written = {p.relative_to(out).as_posix(): json.loads(p.read_text())["path"] for p in out.rglob("*.json")}
    assert written == {"a/x.wav.json": str(files[0]), "b/x.json": str(files[1]), "a/x.flac.json": str(files[2])}


def test_python_api(tiny_bundle, speech):
    import asr

    t = asr.load_model(tiny_bundle, runtime="tf", beam_width=4).transcribe(speech)
    assert isinstance(t, Transcript) and t.path == str(speech)
    check_transcript(t, sf.info(str(speech)).duration)


def test_choose_runtime(tiny_bundle, tmp_path):
    import shutil

    assert (tiny_bundle / TFLITE_FILE).is_file()  # `asr train` writes it into the bundle
    assert choose_runtime("auto", tiny_bundle) == ("litert" if litert_available() else "tf")
    bare = tmp_path / "bare"
    shutil.copytree(tiny_bundle, bare, ignore=shutil.ignore_patterns(TFLITE_FILE))
    assert choose_runtime("auto", bare) == "tf"  # no model.tflite in the bundle
    with pytest.raises(AsrError, match="asr export"):
        choose_runtime("litert", bare)
    with pytest.raises(AsrError, match="--runtime 'gpu'"):
        choose_runtime("gpu", tiny_bundle)


@pytest.mark.skipif(not litert_available(), reason="ai-edge-litert not installed")
def test_the_same_file_gets_the_same_text_whatever_else_the_job_holds(tiny_bundle, speech, tmp_path, monkeypatch):
    """`auto` never switches runtime by the job's length (it once did above 300 s: other text, 8x the memory)."""
    import inspect

    from asr import inference
    from asr.recognize import Recognizer
    from asr.transcribe import transcribe_inputs

    assert "audio_seconds" not in inspect.signature(choose_runtime).parameters  # nothing to switch on
    monkeypatch.setattr(inference, "LITERT_MAX_SECONDS", 8.0, raising=False)  # a long job, with short audio
    longer = tmp_path / "longer.wav"
    audio, rate = sf.read(str(speech), dtype="float32")
    sf.write(str(longer), np.concatenate([audio, audio[::-1]]), rate)
    runtimes, stream_many = [], Recognizer.stream_many
    monkeypatch.setattr(Recognizer, "stream_many",
                        lambda self, *args: runtimes.append(self.runtime) or stream_many(self, *args))
    alone = {p: t for p, t in transcribe_inputs(tiny_bundle, [str(speech)]) if isinstance(t, Transcript)}
    together = {p: t for p, t in transcribe_inputs(tiny_bundle, [str(speech), str(longer)])
                if isinstance(t, Transcript)}
    assert runtimes == ["litert", "litert"]
    assert alone[str(speech)] == together[str(speech)]  # text, duration and word times


def test_tensorflow_runtime_gives_the_same_text_alone_and_among_others(recognizer, speech, tmp_path):
    """Each utterance is run on its own (a padded batch would change what the backward LSTM sees)."""
    other = write_tone(tmp_path / "other.wav", 3.0)
    audio, _ = sf.read(str(speech), dtype="float32")
    sf.write(str(tmp_path / "longer.wav"), np.concatenate([audio[::-1], audio]), 16000)
    alone = recognizer.transcribe(speech)
    together = dict(recognizer.transcribe_many([str(tmp_path / "longer.wav"), str(speech), str(other)]))
    assert together[str(speech)] == alone and alone.segments


@pytest.mark.skipif(not litert_available(), reason="ai-edge-litert not installed")
def test_litert_runtime_matches_tensorflow(tiny_bundle, recognizer, speech, tmp_path):
    from asr.bundle import load_bundle
    from asr.convert import write_tflite
    from asr.recognize import Recognizer

    bundle_dir = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    write_tflite(load_bundle(bundle_dir), bundle_dir / TFLITE_FILE)
    lite = Recognizer(bundle_dir, runtime="auto")
    assert lite.runtime == "litert"
    feats = [np.random.default_rng(0).standard_normal((n, 20)).astype(np.float32) * 5 for n in (37, 200)]
    for f in feats:  # one at a time: in a TF batch the shorter one would see padding after its end
        a, b = lite.predictor([f])[0], recognizer.predictor([f])[0]
        assert a.shape == b.shape == (-(-len(f) // 2), recognizer.info.vocab.size) and np.abs(a - b).max() < 1e-4
    check_transcript(lite.transcribe(speech), sf.info(str(speech)).duration)


def test_tone_files_of_many_formats(recognizer, tmp_path):
    """Non-speech audio still yields a well-formed (probably empty) transcript."""
    for name, rate, channels in (("t.aiff", 11025, 1), ("t.au", 16000, 2)):
        path = write_tone(tmp_path / name, 1.5, rate, channels)
        check_transcript(recognizer.transcribe(path), 1.5)


def test_silence_transcribes_as_nothing(tmp_path):
    """A silent file has nothing to transcribe (the bundled model used to emit a stray `z` for it)."""
    from asr.recognize import load_model

    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(16000 * 2, np.float32), 16000)
    result = load_model("en-synth").transcribe(path)
    assert (result.text, result.words, result.duration) == ("", (), 2.0)


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    """12 known demo sentences with 0.6-1.5 s silences between them: (wav path, [(start, end, TRANSCRIPT)])."""
    path = tmp_path_factory.mktemp("sentences") / "sentences.wav"
    return path, write_sentences_with_pauses(path, 12)


@pytest.fixture(scope="module")
def en_synth():
    from asr.recognize import load_model

    return load_model("en-synth")


def test_every_cue_and_segment_boundary_falls_in_a_pause(en_synth, sentences):
    path, spans = sentences
    t = en_synth.transcribe(path)
    assert len(t.segments) == len(spans)  # one utterance per sentence: none merged across a pause, none split
    assert t.text == " ".join(s.text for s in t.segments) and t.words == tuple(w for s in t.segments for w in s.words)
    for start, end, _ in cues(t.segments) + [(s.start, s.end, s.text) for s in t.segments]:
        owners = [k for k, (a, b, _) in enumerate(spans) if start < b + 0.25 and end > a - 0.25]
        assert len(owners) == 1, (start, end, owners)  # within one sentence (+ padding), never across a pause
    for segment, (a, b, _) in zip(t.segments, spans):
        assert a - 0.25 < segment.start <= segment.words[0].start and segment.words[-1].end <= segment.end < b + 0.25


def test_webvtt_validates_and_tsv_parses(en_synth, sentences):
    import webvtt

    t = en_synth.transcribe(sentences[0])
    vtt = format_transcript(t, "vtt")
    captions = webvtt.from_string(vtt).captions  # a WebVTT parser rejects a malformed file
    expected = cues(t.segments)
    assert [c.text for c in captions] == [text for _, _, text in expected] and len(captions) >= len(t.segments)
    assert [(c.start, c.end) for c in captions] == [(timestamp(a, "."), timestamp(b, ".")) for a, b, _ in expected]
    starts = [round(a, 3) for a, _, _ in expected]
    assert starts == sorted(starts) and all(a < b for a, b, _ in expected)
    rows = [line.split("\t") for line in format_transcript(t, "tsv").splitlines()]
    assert rows[0] == ["start", "end", "text"]
    assert [(int(a) / 1000, int(b) / 1000, text) for a, b, text in rows[1:]] == \
        [(round(a, 3), round(b, 3), text) for a, b, text in expected]


def test_stdin_raw_pcm_and_stream_give_the_file_text(en_synth, sentences):
    path = sentences[0]
    text = en_synth.transcribe(path).text
    assert text
    wav = path.read_bytes()
    from_stdin = runner.invoke(app, ["transcribe", "-"], input=wav)
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout.strip() == text
    audio, _ = sf.read(str(path), dtype="int16")
    raw = runner.invoke(app, ["transcribe", "--rate", "16000", "-"], input=audio.tobytes())
    assert raw.exit_code == 0 and raw.stdout.strip() == text
    streamed = runner.invoke(app, ["transcribe", "--stream", str(path)])
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert streamed.exit_code == 0 and len(lines) == len(sentences[1])
    assert " ".join(line["text"] for line in lines) == text
    assert all(line["path"] == str(path) and line["start"] < line["end"] and line["words"] for line in lines)


def test_a_real_pipe_streams_and_a_flac_pipe_is_one_line(sentences, tmp_path):
    import subprocess
    import sys

    path = sentences[0]
    with open(path, "rb") as f:
        out = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--stream", "-"], stdin=f,
                             capture_output=True, text=True, timeout=120)
    # a file redirected is seekable; a pipe is not: feed it through cat
    piped = subprocess.run(f"cat {path} | {sys.executable} -m asr transcribe --stream -", shell=True,
                           capture_output=True, text=True, timeout=120)
    assert out.returncode == piped.returncode == 0, piped.stderr
    assert out.stdout == piped.stdout and len(piped.stdout.splitlines()) == 12
    flac = tmp_path / "s.flac"
    sf.write(str(flac), sf.read(str(path))[0], 16000)
    bad = subprocess.run(f"cat {flac} | {sys.executable} -m asr transcribe -", shell=True, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "skipped -: cannot read audio -:" in bad.stderr and "sox x.flac -t wav -" in bad.stderr


def test_python_api_arrays_file_objects_and_segments(en_synth, sentences):
    import io

    path = sentences[0]
    expected = en_synth.transcribe(path)
    floats, rate = sf.read(str(path), dtype="float32")
    assert en_synth.transcribe(floats, sample_rate=rate).words == expected.words
    ints, _ = sf.read(str(path), dtype="int16")
    assert en_synth.transcribe(ints, sample_rate=rate).text == expected.text
    assert en_synth.transcribe(np.stack([floats, floats], axis=1), sample_rate=rate).text == expected.text
    with open(path, "rb") as f:
        assert en_synth.transcribe(f).text == expected.text
    assert en_synth.transcribe(io.BytesIO(path.read_bytes())).segments == expected.segments
    with pytest.raises(AsrError, match="sample_rate=16000"):
        en_synth.transcribe(floats)

    consumed = []  # an iterator over segments: the first comes long before the audio ends

    def blocks():
        for k in range(0, len(floats), 800):
            consumed.append(k)
            yield floats[k:k + 800]

    segments = en_synth.segments(blocks(), sample_rate=rate)
    first = next(segments)
    assert first == expected.segments[0] and len(consumed) * 800 < len(floats) / 4
    assert [first, *segments] == list(expected.segments)


def test_progress_bar_on_request_only(en_synth, sentences, capsys):
    list(en_synth.transcribe_many([sentences[0]], progress=True))
    assert "s audio" in capsys.readouterr().err
    list(en_synth.transcribe_many([sentences[0]]))
    assert capsys.readouterr().err == ""


def test_cli_transcribe_stream_and_rate_errors(sentences):
    path = str(sentences[0])
    for args, message in ((["--stream", "--format", "srt"], "--stream prints one JSON line"),
                          (["--rate", "0"], "--rate 0: expected a sample rate"),
                          (["--output-dir", "out", "-"], "standard input (-) has no name")):
        result = runner.invoke(app, ["transcribe", *args, *([] if "-" in args else [path])])
        assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1


def test_empty_or_unreadable_stdin_is_one_line_naming_it():
    """An empty pipe, an empty redirected file and bytes that are no audio: one line each, exit 1."""
    import subprocess
    import sys

    empty = "cannot read audio -: standard input is empty; pipe audio into it"
    for stdin in (b"", subprocess.DEVNULL):  # a pipe with no bytes, /dev/null (seekable)
        kwargs = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
        proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", "-"], capture_output=True, timeout=120,
                              **kwargs)
        assert proc.returncode == 1 and empty in proc.stderr.decode() and proc.stdout == b""
    proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", "-"], input=bytes(range(256)) * 4,
                          capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "cannot read audio -: Format not recognised" in err and "Error opening" not in err
    result = runner.invoke(app, ["transcribe", "-"], input=b"")  # CliRunner's standard input is a file object
    assert result.exit_code == 1 and empty in result.output


def test_listen_prints_each_utterance(sentences, monkeypatch):
    """`asr listen` through a stand-in for sounddevice that plays the file as if recorded."""
    import sys
    import types

    audio, _ = sf.read(str(sentences[0]), dtype="float32")

    class InputStream:
        def __init__(self, samplerate, channels, dtype, device, blocksize, callback):
            assert (samplerate, channels, dtype) == (16000, 1, "float32")
            self.callback, self.blocksize = callback, blocksize

        def __enter__(self):
            for k in range(0, len(audio), self.blocksize):
                self.callback(audio[k:k + self.blocksize, None], self.blocksize, None, None)
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(InputStream=InputStream, PortAudioError=OSError)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    from asr import audio as audio_module

    real = audio_module.microphone

    def recording(rate, device=None, stop=None):  # stops after the recording, as a second Ctrl-C would
        blocks = real(rate, device, stop)
        n = -(-len(audio) // int(audio_module.BLOCK_SECONDS * rate))  # the blocks InputStream delivers
        yield from (next(blocks) for _ in range(n))
        yield np.zeros(rate, np.float32)  # 1 s of silence after the end lets the last pause pass
        raise KeyboardInterrupt

    monkeypatch.setattr(audio_module, "microphone", recording)
    result = runner.invoke(app, ["listen", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 12 and all(line["path"] == "mic" and line["text"] for line in lines)


def test_listen_help_names_the_extra_to_install():
    result = runner.invoke(app, ["listen", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "pip install 'asr[mic]'" in result.output  # not eaten as Rich markup


def test_ctrl_c_in_listen_still_prints_the_utterance_in_progress(sentences, monkeypatch):
    """Ctrl-C while the speaker is mid-sentence ends the recording; that sentence is still printed."""
    import os
    import signal
    import sys
    import threading
    import types

    path, spans = sentences
    audio, rate = sf.read(str(path), dtype="float32")
    cut = int(rate * (spans[1][0] + spans[1][1]) / 2)  # half-way through the second sentence: no pause after it

    class InputStream:
        def __init__(self, samplerate, channels, dtype, device, blocksize, callback):
            self.callback, self.blocksize = callback, blocksize

        def __enter__(self):
            for k in range(0, cut, self.blocksize):
                self.callback(audio[k:min(k + self.blocksize, cut), None], self.blocksize, None, None)
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()  # the user presses Ctrl-C
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(InputStream=InputStream,
                                                                          PortAudioError=OSError))
    before = signal.getsignal(signal.SIGINT)
    result = runner.invoke(app, ["listen", "--json"])
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(line["text"] for line in lines)  # the first sentence and half of the second
    assert lines[1]["start"] < spans[1][0] + 0.25 and lines[1]["end"] <= cut / rate + 0.01
