"""Build step only: pyproject.toml holds the package's metadata.

setuptools reads this file for the one thing pyproject.toml cannot say, the C extension
xcfbench.sim.compressors._lzokernel (the kernel's LZO1X-1 and LZO-RLE encoders, an LZO1X
decoder, the software 842 encoder and decoder).  `pip install -e .` and `pip wheel .` both
compile it; gcc and the Python headers are needed.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "xcfbench.sim.compressors._lzokernel",
            ["xcfbench/sim/compressors/_lzokernel.c"],
            extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wextra"],
        )
    ],
)
