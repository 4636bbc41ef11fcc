"""The report says when an Arm document was measured under qemu (Arm architecture, the host's x86 CPU flags)."""
from report_helpers import make_doc

from edgebench.report.summary import emulated_on, highlights
from edgebench.report.views import DocView


def _doc(arch, isa):
    doc = make_doc(device="arm64-qemu")
    doc["environment"]["cpu"].update(arch=arch, isa=isa)
    return doc


def test_arm_results_with_x86_flags_say_speed_means_nothing():
    lines = highlights(DocView(_doc("aarch64", ["avx2", "avx512f", "fma"])))
    assert lines[0].startswith("Emulated: these aarch64 results ran under user-mode emulation (qemu)")
    assert "avx2, avx512f, fma" in lines[0] and "mean nothing" in lines[0]
    assert any(line.startswith("Fastest") for line in lines[1:])


def test_native_arm_and_x86_results_have_no_note():
    assert emulated_on(_doc("aarch64", ["asimd", "asimddp", "fphp"])["environment"]) is None
    assert emulated_on(_doc("x86_64", ["avx2", "avx512f"])["environment"]) is None
    assert emulated_on({"cpu": {"arch": "aarch64"}}) is None   # no flags recorded: nothing to say
    assert not highlights(DocView(_doc("x86_64", ["avx2"])))[0].startswith("Emulated")
