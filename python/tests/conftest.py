import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(__file__))  # reference.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
