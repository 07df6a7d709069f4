"""corpora/english.txt: rebuilt byte for byte by its generator, and calibrated for lzo1x-1.

The calibration is the seed's: English text compressing to 75% of a page on average
"with little deviation" (corpora/README.md).  python-lzo level 1 without a header is
liblzo2 2.10's lzo1x_1_compress, the compressor the corpus was tuned with.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import statistics
import subprocess
import sys
from pathlib import Path

import lzo

PAGE = 4096
CORPORA = Path(__file__).resolve().parents[1] / "corpora"
CORPUS = CORPORA / "english.txt"
GENERATOR = CORPORA / "make_corpus.py"


def pages(data: bytes) -> list[bytes]:
    return [data[i : i + PAGE] for i in range(0, len(data) - PAGE + 1, PAGE)]


def lzo_size(page: bytes) -> int:
    return len(lzo.compress(page, 1, False))


def load_generator():
    spec = importlib.util.spec_from_file_location("make_corpus", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_corpus(tmp_path):
    out = tmp_path / "english.txt"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(out)], check=True, capture_output=True, cwd=tmp_path
    )
    assert (
        hashlib.sha256(out.read_bytes()).hexdigest()
        == hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    )


def test_corpus_is_whole_ascii_pages_of_whole_paragraphs():
    data = CORPUS.read_bytes()
    assert len(data) % PAGE == 0 and 0 < len(data) <= 4 << 20
    assert data.isascii()
    for page in pages(data):
        # Each page starts a paragraph and ends one, so no page is cut mid-sentence.
        assert page.endswith(b".\n\n") or page.endswith(b"?\n\n")
        assert page[:1].isupper() or page[:2] == b'"' + page[1:2].upper()
    assert max(len(line) for line in data.split(b"\n")) <= 72


def test_corpus_compresses_to_75_percent_with_little_deviation():
    sizes = [lzo_size(page) for page in pages(CORPUS.read_bytes())]
    mean = statistics.fmean(sizes)
    sd = statistics.pstdev(sizes)
    assert 0.74 * PAGE <= mean <= 0.76 * PAGE, mean
    assert sd <= 0.03 * PAGE, sd
    assert max(sizes) <= 3584, max(sizes)  # zcache's zv_max_zsize: none rejected


def test_readme_records_this_corpus():
    readme = (CORPORA / "README.md").read_text()
    assert hashlib.sha256(CORPUS.read_bytes()).hexdigest() in readme
    sizes = [lzo_size(page) for page in pages(CORPUS.read_bytes())]
    mean_pct = f"{statistics.fmean(sizes) / PAGE * 100:.2f}%"
    assert re.search(re.escape(mean_pct), readme), f"README lacks the mean {mean_pct}"


def test_stall_model_flags_what_stalls_liblzo2():
    """A page whose first 300 bytes never repeat 4 bytes makes lzo1x_1 skip so fast
    that it rarely matches again; the generator's model must see that, and not flag
    the corpus's own pages."""
    gen = load_generator()
    letters = b"abcdefghijklmnopqrstuvwxyz "
    noise = bytes(letters[b % 27] for b in hashlib.shake_256(b"stall").digest(300))
    originals = pages(CORPUS.read_bytes())[:16]
    noisy = [noise + page[: PAGE - len(noise)] for page in originals]
    assert not any(gen.lzo1x_1_stalls(page) for page in originals)
    assert all(gen.lzo1x_1_stalls(page) for page in noisy)
    # Without a stall the 300 literal bytes cost about 100 more than the text they
    # replace (so they do under the Linux 3.1 compressor); a stalled page loses ~1000.
    growth = statistics.fmean(map(lzo_size, noisy)) - statistics.fmean(map(lzo_size, originals))
    assert growth > 300, growth
