"""The scripts under docker/, loaded for tests: docker/ is not a package (the images and
./run.sh docker run these files directly)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from meteoflow.settings import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "docker"


def load_script(name: str) -> ModuleType:
    """docker/<name>.py as the module `docker_<name>` (loaded once)."""
    module_name = f"docker_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, DOCKER_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
