"""Build step only: pyproject.toml holds the package's metadata.

setuptools reads this file for the one thing pyproject.toml cannot say, the C extensions:

  xcfbench.sim.compressors._lzokernel  the kernel's LZO1X-1 and LZO-RLE encoders, an LZO1X
                                       decoder, the software 842 encoder and decoder
  xcfbench.sim._native                 the allocators' C twins and the trace replay loop

`pip install -e .` and `pip wheel .` compile both; gcc and the Python headers are needed.
_native is optional: if it does not compile, the install goes on without it and xcfbench
runs the pure-Python allocators (the same numbers, slower) and says so once.
"""

import glob
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CFLAGS = ["-O2", "-std=gnu99", "-Wall", "-Wextra"]
OPTIONAL = {"xcfbench.sim._native"}


class OptionalBuildExt(build_ext):
    """Build every extension; one in OPTIONAL that fails is left out with a warning."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001  # any compiler failure
            if ext.name not in OPTIONAL:
                raise
            print(
                f"warning: {ext.name} not built ({e}); the pure-Python path runs", file=sys.stderr
            )


setup(
    cmdclass={"build_ext": OptionalBuildExt},
    ext_modules=[
        Extension(
            "xcfbench.sim.compressors._lzokernel",
            ["xcfbench/sim/compressors/_lzokernel.c"],
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "xcfbench.sim._native",
            sorted(glob.glob("xcfbench/sim/native/*.c")),
            depends=glob.glob("xcfbench/sim/native/*.h"),
            extra_compile_args=[
                *CFLAGS,
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
            ],
        ),
    ],
)
