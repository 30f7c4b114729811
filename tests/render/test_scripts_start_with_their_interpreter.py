"""Every program a VM is given starts with its interpreter line, so anything may execute it directly
(the settings program runs hooks with exec, not through a shell)."""

from __future__ import annotations

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document
from tests.conftest import STACK_FILES
from validation.stack_config import load_stack


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.stem)
def test_executable_files_begin_with_a_shebang(stack_file):
    config = load_stack(stack_file)
    for machine in plan_machines(config):
        # Compressed files (encoding: gz+b64) are decompressed by cloud-init; their text is checked elsewhere.
        files = {f["path"]: (f.get("content", ""), str(f.get("permissions", ""))) for f in
                 yaml.safe_load(render_user_data(config, machine)).get("write_files", []) if "encoding" not in f}
        for path, content in files.items():
            text, mode = content
            if mode.endswith(("5", "7")) and isinstance(text, str) and text.strip():
                assert text.startswith("#!"), f"{stack_file.stem} {machine.name}: {path} does not start with #!"
        for path, text in document_files(settings_document(config, machine)).items():
            if "#!" in text[:200]:
                assert text.startswith("#!"), f"{stack_file.stem} {machine.name}: {path} (user data)"
