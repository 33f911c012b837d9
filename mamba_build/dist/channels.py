"""What a CUDA extension wheel was built against, as one name: its index channel and local version.

An extension binary works only with the torch it was compiled against: the same torch release line
(X.Y; patch releases keep the C++ ABI), the same CUDA major (libcudart.so.N) and the same C++ ABI
setting (``_GLIBCXX_USE_CXX11_ABI``). Wheels that differ only in these must never compete on one index
page: pip and uv take the highest version, and local version labels compare per dot-segment as strings
when not numeric, so ``+cu13torch2.9cxx11abitrue`` sorts above ``+cu13torch2.14cxx11abitrue``. So each
(CUDA major, torch X.Y, ABI) is its own channel, ``simple/cu12-torch2.5-cxx11abiFALSE/``, like the
per-CUDA indexes of PyTorch (download.pytorch.org/whl/cu124) and Astral (wheels.astral.sh/simple/cu128/),
one level narrower because an extension also depends on the torch release.

The local version label of a built wheel (``+cu12torch2.5cxx11abiFALSE``, upstream's spelling) and the
``Requires-Dist: torch==2.5.*`` pin stamped into its METADATA (mamba_build/dist/provenance.py) come from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mamba_build import tables

_NAME = re.compile(r"^cu(?P<cuda>\d+)-torch(?P<torch>\d+\.\d+)-cxx11abi(?P<abi>TRUE|FALSE)$")


@dataclass(frozen=True, order=True)
class Channel:
    cuda_major: int
    torch: str  # release line "X.Y"
    cxx11_abi: bool

    @classmethod
    def of(cls, torch_version: str | None, cuda: str | None, cxx11_abi: bool | None) -> Channel | None:
        """The channel of a build against torch ``torch_version`` (e.g. "2.5.1+cu124"), whose CUDA is
        ``cuda`` ("12.4"); None when any of the three is unknown."""
        if not torch_version or not cuda or cxx11_abi is None:
            return None
        tv = tables.version_tuple(torch_version)
        cv = tables.version_tuple(cuda)
        if len(tv) < 2 or not cv:
            return None
        return cls(int(cv[0]), f"{tv[0]}.{tv[1]}", bool(cxx11_abi))

    @classmethod
    def parse(cls, name: str) -> Channel | None:
        """'cu12-torch2.5-cxx11abiFALSE' -> Channel; None for any other name."""
        m = _NAME.match(name)
        if not m:
            return None
        return cls(int(m["cuda"]), m["torch"], m["abi"] == "TRUE")

    @property
    def abi_word(self) -> str:
        return "TRUE" if self.cxx11_abi else "FALSE"

    @property
    def name(self) -> str:
        """Directory under simple/: ``cu12-torch2.5-cxx11abiFALSE``."""
        return f"cu{self.cuda_major}-torch{self.torch}-cxx11abi{self.abi_word}"

    @property
    def local_version(self) -> str:
        """The wheel's local version label (without '+'): ``cu12torch2.5cxx11abiFALSE``."""
        return f"cu{self.cuda_major}torch{self.torch}cxx11abi{self.abi_word}"

    @property
    def torch_requirement(self) -> str:
        """What the wheel's METADATA requires: ``torch==2.5.*`` (any patch release of the line)."""
        return f"torch=={self.torch}.*"

    def describe(self) -> str:
        return f"torch {self.torch}.x, CUDA {self.cuda_major}, C++11 ABI {'on' if self.cxx11_abi else 'off'}"

    def differences(self, other: Channel) -> list[str]:
        """What differs between a wheel's channel (self) and an environment's (other), in words."""
        out = []
        if self.torch != other.torch:
            out.append(f"built for torch {self.torch}, this environment has torch {other.torch}")
        if self.cuda_major != other.cuda_major:
            out.append(f"built for CUDA {self.cuda_major}, this torch is a CUDA {other.cuda_major} build")
        if self.cxx11_abi != other.cxx11_abi:
            out.append(
                f"built with the C++11 ABI {'on' if self.cxx11_abi else 'off'}, this torch has it "
                f"{'on' if other.cxx11_abi else 'off'}"
            )
        return out
