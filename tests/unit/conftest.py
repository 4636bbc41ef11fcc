"""tests/unit: the fuzzers' count of generated inputs per loader, printed at the end of every run (make test,
CI) so the log shows how many inputs each loader met (issue 20: at least 500 each)."""
from __future__ import annotations


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    import fuzz_helpers

    if not fuzz_helpers.COUNTS:
        return
    terminalreporter.section("fuzzed inputs per loader")
    for loader, c in sorted(fuzz_helpers.COUNTS.items()):
        terminalreporter.write_line(f"{loader:16s} {c['inputs']:6d} inputs: {c['refused']:5d} refused with our "
                                    f"error, {c['accepted']:5d} accepted as valid")
