"""Train the named recipes and rewrite the shipped reference checkpoints (`make models`).

    python tools/make_models.py [NAME ...]      # default: every recipe in induction_lib.zoo.RECIPES
"""
import argparse

from induction_lib import zoo

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("names", nargs="*", help=f"recipes to (re)write (default: all of {', '.join(zoo.RECIPES)})")
zoo.write_reference(parser.parse_args().names or None)
