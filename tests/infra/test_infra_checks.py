"""The offline infra checks themselves: they must fail on what they exist to catch.

Also the azd wiring: azure.yaml and infra/main.parameters.json against infra/main.bicep. Runs the
tools in `.venv-infra` (built by `scripts/check-infra`); a missing venv fails, never skips.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_PYTHON = ROOT / ".venv-infra" / "bin" / "python"
BICEP_CHECK = INFRA / "scripts" / "bicep_check.py"
SKIPS = INFRA / "checkov-skips.yaml"

# checkov checks for properties the deployment must have; they may never be skipped.
REQUIRED_CHECKS = (
    "CKV_AZURE_3",  # storage: HTTPS only
    "CKV_AZURE_44",  # storage: TLS 1.2 minimum
    "CKV_AZURE_34",  # blob containers: no public access level
    "CKV_AZURE_70",  # function app: HTTPS only
    "CKV_AZURE_145",  # function app: TLS 1.2 minimum
    "CKV_AZURE_236",  # Azure OpenAI account: local (key) authentication disabled
)

VALID_STORAGE = """\
param location string = resourceGroup().location

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${uniqueString(resourceGroup().id)}'
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
  }
}
"""


def bicep_check(*args: str) -> subprocess.CompletedProcess[str]:
    if not INFRA_PYTHON.exists():
        pytest.fail(
            f"{INFRA_PYTHON} is missing: run scripts/check-infra first "
            "(scripts/check and make test do); it builds the venv with the Bicep tools",
            pytrace=False,
        )
    return subprocess.run(
        [str(INFRA_PYTHON), str(BICEP_CHECK), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def load_yaml(path: Path) -> Any:
    completed = bicep_check("yaml", str(path))
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def main_bicep() -> dict[str, Any]:
    completed = bicep_check("json", "infra/main.bicep")
    assert completed.returncode == 0, completed.stderr
    parsed: dict[str, Any] = json.loads(completed.stdout)["infra/main.bicep"]
    return parsed


def test_a_missing_infra_venv_fails_and_names_the_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "INFRA_PYTHON", tmp_path / "absent" / "python")
    with pytest.raises(pytest.fail.Exception, match="run scripts/check-infra"):
        bicep_check("syntax", "infra/main.bicep")


# -- syntax ----------------------------------------------------------------------------------------


def test_every_template_in_the_repo_parses() -> None:
    templates = sorted(str(path.relative_to(ROOT)) for path in INFRA.rglob("*.bicep"))
    assert "infra/main.bicep" in templates
    completed = bicep_check("syntax", *templates)
    assert completed.returncode == 0, completed.stderr


def test_a_valid_snippet_passes_the_syntax_check(tmp_path: Path) -> None:
    good = tmp_path / "good.bicep"
    good.write_text(VALID_STORAGE)
    completed = bicep_check("syntax", str(good))
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize(
    ("broken", "line"),
    [
        pytest.param(VALID_STORAGE.replace("kind: ", "kind: = "), 6, id="stray-equals"),
        pytest.param(VALID_STORAGE.replace("  }\n}\n", "  }\n"), 3, id="unclosed-resource"),
        pytest.param(VALID_STORAGE.replace("location: loc", "location loc"), 5, id="missing-colon"),
        pytest.param(VALID_STORAGE.replace("'Standard_LRS'", "'Standard_LRS',,"), 8, id="commas"),
    ],
)
def test_a_broken_snippet_fails_the_syntax_check_at_its_line(
    tmp_path: Path, broken: str, line: int
) -> None:
    bad = tmp_path / "bad.bicep"
    bad.write_text(broken)
    completed = bicep_check("syntax", str(bad))
    assert completed.returncode == 1
    assert re.search(
        rf"{re.escape(str(bad))}:{line}:\d+: .*\(tree-sitter-bicep\)", completed.stderr
    ), completed.stderr
    assert "(pycep-parser, which checkov uses)" in completed.stderr


def test_valid_bicep_that_checkov_cannot_parse_fails_too(tmp_path: Path) -> None:
    # A loop over nested child resources is valid Bicep (tree-sitter accepts it), but pycep-parser,
    # and so checkov, cannot read it: checkov would report "Parsing errors: 1" and exit 0.
    nested = tmp_path / "nested.bicep"
    nested.write_text(
        VALID_STORAGE.replace(
            "  }\n}\n",
            "  }\n  resource queues 'queueServices' = [for name in ['a', 'b']: {\n"
            "    name: name\n  }]\n}\n",
        )
    )
    completed = bicep_check("syntax", str(nested))
    assert completed.returncode == 1
    assert "pycep-parser" in completed.stderr
    assert "tree-sitter-bicep" not in completed.stderr


# -- checkov ---------------------------------------------------------------------------------------


def test_checkov_gate_fails_on_findings_parse_errors_and_bad_skips(tmp_path: Path) -> None:
    templates = tmp_path / "infra"
    templates.mkdir()
    (templates / "open.bicep").write_text(
        VALID_STORAGE.replace("allowSharedKeyAccess: false", "allowSharedKeyAccess: true").replace(
            "'TLS1_2'", "'TLS1_0'"
        )
    )
    (templates / "unparsable.bicep").write_text("resource x 'A/b@1' = {\n")
    skips = tmp_path / "skips.yaml"
    skips.write_text(
        "CKV_AZURE_206: LRS keeps this throwaway test account cheap enough.\n"
        "CKV_AZURE_35: fine\n"
        "CKV_AZURE_9999: A check that never fires must be reported as stale.\n"
    )
    completed = bicep_check("checkov", str(templates), str(skips))
    assert completed.returncode == 1
    errors = completed.stderr
    assert "could not parse" in errors
    assert "unparsable.bicep" in errors
    assert "CKV_AZURE_44" in errors  # TLS 1.0, not justified
    assert "CKV_AZURE_206 " not in errors  # justified, so accepted
    assert "CKV_AZURE_35 needs a reason" in errors
    assert "CKV_AZURE_9999 no longer fires" in errors


def test_every_accepted_checkov_finding_has_a_reason() -> None:
    skips = load_yaml(SKIPS)
    assert isinstance(skips, dict)
    assert skips
    for check_id, reason in skips.items():
        assert re.fullmatch(r"CKV2?_AZURE_\d+", check_id), check_id
        assert isinstance(reason, str), check_id
        assert len(reason.split()) >= 12, check_id
    for required in REQUIRED_CHECKS:
        assert required not in skips, f"{required} guards a property the deployment must have"


def test_checkov_gate_passes_on_the_repo_and_runs_the_required_checks() -> None:
    completed = bicep_check("checkov", "infra", str(SKIPS.relative_to(ROOT)))
    assert completed.returncode == 0, completed.stderr
    passed_line = next(
        line for line in completed.stdout.splitlines() if line.startswith("checkov passed:")
    )
    passed = set(passed_line.removeprefix("checkov passed:").split())
    assert set(REQUIRED_CHECKS) <= passed, set(REQUIRED_CHECKS) - passed


# -- azd wiring ------------------------------------------------------------------------------------


def test_azure_yaml_deploys_this_directory_as_the_python_function_service() -> None:
    azure = load_yaml(ROOT / "azure.yaml")
    assert azure["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert azure["infra"]["provider"] == "bicep"
    infra_dir = ROOT / azure["infra"]["path"]
    assert (infra_dir / f"{azure['infra']['module']}.bicep").is_file()
    assert (infra_dir / f"{azure['infra']['module']}.parameters.json").is_file()


def test_every_parameter_in_the_parameters_file_exists_in_main_bicep() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main_bicep()["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    required = {name for name, spec in declared.items() if spec["default"] is None}
    assert required <= set(parameters), required - set(parameters)


def test_parameter_file_fallbacks_match_the_bicep_defaults() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main_bicep()["parameters"]
    for name, spec in parameters.items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", spec["value"])
        assert match, f"{name}: use an azd ${{VARIABLE}} or ${{VARIABLE=default}}"
        if match.group(2) is not None:
            default = declared[name]["default"]
            # azd turns "true"/"false" into a bool parameter's value, so compare in JSON spelling.
            expected = json.dumps(default) if isinstance(default, bool) else str(default)
            assert expected == match.group(2), name
