import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import os

# Tests never download anything: datasets they need are generated or written as IDX files.
os.environ["LLC_NO_DOWNLOAD"] = "1"
