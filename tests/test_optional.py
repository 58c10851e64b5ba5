"""The base package imports no optional dependency: ray is imported only by latefold.ray."""

from __future__ import annotations

import subprocess
import sys


def test_import_latefold_does_not_import_ray():
    code = "import sys, latefold, latefold.datasets; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
