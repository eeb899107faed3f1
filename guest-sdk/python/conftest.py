"""pytest: the SDK is plain files, not an installed package, so tests (the
SDK's, the template's) import it from here. No bytecode caches are left in
the source tree."""
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
