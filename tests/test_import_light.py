import subprocess
import sys


def test_import_provenir_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, provenir, provenir.core.config, provenir.core.manifest, provenir.plugins.registry, "
        "provenir.cli.main; provenir.cli.main.build_app(); "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
