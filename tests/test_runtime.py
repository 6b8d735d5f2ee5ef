"""asr.runtime: what the process learns about its machine (the CPU's bfloat16 products)."""

from __future__ import annotations

from asr.runtime import native_bfloat16


def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert not native_bfloat16(str(cpuinfo))  # AVX-512 without its bfloat16 extension
    for flag in ("avx512_bf16", "amx_bf16"):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu avx512f {flag} avx512_vnni\n")
        assert native_bfloat16(str(cpuinfo))
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN off: TensorFlow's own kernels emulate bfloat16
    assert not native_bfloat16(str(cpuinfo))
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert not native_bfloat16(str(tmp_path / "missing"))  # no /proc/cpuinfo (macOS, Windows)
