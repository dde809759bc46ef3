"""What machine a benchmark ran on, and whether it was emulated (then its seconds are not a Pi's)."""

from __future__ import annotations

import platform
import re
from pathlib import Path


def machine(arch: str | None = None, cpuinfo: str | None = None) -> dict[str, str]:
    """The architecture Python runs as, and whether qemu user emulation is doing it.

    Under qemu-user, Python sees the guest architecture but /proc/cpuinfo is the host kernel's.
    """
    arch = arch or platform.machine()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    host_x86 = "vendor_id" in cpuinfo and "flags" in cpuinfo
    emulated = arch not in ("x86_64", "i686", "i386") and host_x86
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return {"machine": arch + (" (emulated by qemu-user on x86_64)" if emulated else " (native)"),
            "cpu": model.group(1).strip() if model else "unknown"}
