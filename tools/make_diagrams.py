"""Write the book's explanatory diagrams as SVG files into book/images/.

    python tools/make_diagrams.py [--out DIR] [--png]

induction_circuit.svg     the two-head induction circuit (intro, chapter 3)
corruption_positions.svg  chapter 4's corruption experiment: positions c, c + 1, c + 2 and c + L - 1 ...
hopfield_mapping.svg      chapter 8's mapping: keys, query, values <-> stored patterns, state, readout

The files are reproducible: the SVG ids come from a fixed hash salt, the date is left out and the text
is drawn as paths (so the files do not depend on the reader's fonts). `--png` also writes PNG previews
(not for the book) next to them.
"""
import argparse
import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

from induction_lib import plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = {
    "induction_circuit": lambda: plots.induction_circuit((0, 0), (1, 0)),
    "corruption_positions": lambda: plots.corruption_positions(L=7, c=3),
    "hopfield_mapping": plots.hopfield_mapping,
}


def write(out: Path, png: bool = False) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context({"svg.hashsalt": "induction-heads-book", "svg.fonttype": "path"}):
        for name, draw in DIAGRAMS.items():
            fig = draw()
            path = out / f"{name}.svg"
            fig.savefig(path, format="svg", metadata={"Date": None}, facecolor="white")
            written.append(path)
            if png:
                fig.savefig(out / f"{name}.png", dpi=100, facecolor="white")
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "images", help="directory (default book/images)")
    parser.add_argument("--png", action="store_true", help="also write PNG previews")
    args = parser.parse_args()
    for path in write(args.out, args.png):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
