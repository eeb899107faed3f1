import sys
from pathlib import Path

# The Python SDK is plain files in the repository, not an installed package.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "guest-sdk" / "python"))
