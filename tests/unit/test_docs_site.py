import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_site_builds_strictly_without_warnings(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "reference" / "example" / "architecture.svg").exists()
    assert (tmp_path / "site" / "troubleshooting" / "index.html").exists()
