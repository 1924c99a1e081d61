"""What a bento is built from, without running BentoML: the build context laid out from the
caller's package, its version, the project's package (a self-contained copy of the service at the
import paths the service uses), the deployment-record log, and the serve command's refusal."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from efficientai_assets.defs.serving import serve_cli
from efficientai_assets.defs.serving.packaging import (
    PACKAGE,
    SERVICE_IMPORT,
    SETTINGS_PATH,
    router_program,
    service_package,
)
from resources.bentoml.build_context import BENTOFILE, README, REQUIREMENTS, write_build_context
from resources.bentoml.records import DeploymentLog
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import (
    BentoStoreError,
    DeploymentRecord,
    ImportedModel,
    ModelProvenance,
    PackageFile,
    ServedModel,
    ServicePackage,
)

PROVENANCE = ModelProvenance("test-digits-classifier", "3", "md5-abc", "sha-def")


def small_package(tmp_path: Path, code: str = "VALUE = 1\n") -> ServicePackage:
    source = tmp_path / "src" / "service.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(code)
    return ServicePackage(
        service="app.service:Service",
        files=(PackageFile(source, "app/service.py"),),
        settings_path="app/settings.json",
        settings={"model": "m:1", "limit": 5},
        requirements=("bentoml==1.4.0", "numpy==2.0.0"),
        include=("app/**/*.py", "app/settings.json", "README.md"),
        markers={"app/__init__.py": ""},
        readme="# a model\n",
    )


def layout(package: ServicePackage, root: Path) -> str:
    root.mkdir(parents=True)
    return write_build_context(root, "test-model", package, {"model_version": "3"}, "3.11")


def test_the_build_context_holds_exactly_what_the_caller_handed_over(tmp_path: Path) -> None:
    root = tmp_path / "context"
    layout(small_package(tmp_path), root)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == sorted(
        ["app/__init__.py", "app/service.py", "app/settings.json", BENTOFILE, REQUIREMENTS, README]
    )
    assert (root / "app/service.py").read_text() == "VALUE = 1\n"
    assert json.loads((root / "app/settings.json").read_text()) == {"model": "m:1", "limit": 5}
    assert (root / REQUIREMENTS).read_text() == "bentoml==1.4.0\nnumpy==2.0.0\n"
    bentofile = yaml.safe_load((root / BENTOFILE).read_text())
    assert bentofile["service"] == "app.service:Service"
    assert bentofile["name"] == "test-model"
    assert bentofile["labels"] == {"model_version": "3"}
    assert bentofile["include"] == ["app/**/*.py", "app/settings.json", "README.md"]
    assert bentofile["docker"] == {"distro": "debian", "python_version": "3.11"}


def test_the_same_package_gives_the_same_version_and_any_change_a_new_one(tmp_path: Path) -> None:
    package = small_package(tmp_path)
    same = layout(package, tmp_path / "a") == layout(package, tmp_path / "b")
    changed_code = layout(small_package(tmp_path / "x", "VALUE = 2\n"), tmp_path / "c")
    moved = ServicePackage(
        **{**package.__dict__, "files": (PackageFile(package.files[0].source, "app/moved.py"),)}
    )
    changed_settings = ServicePackage(**{**package.__dict__, "settings": {"limit": 6}})
    versions = {
        layout(package, tmp_path / "d"),
        changed_code,
        layout(moved, tmp_path / "e"),
        layout(changed_settings, tmp_path / "f"),
    }
    assert same and len(versions) == 4


def test_a_package_cannot_write_outside_its_build_context(tmp_path: Path) -> None:
    package = small_package(tmp_path)
    with pytest.raises(ValueError, match="inside the build context"):
        ServicePackage(**{**package.__dict__, "settings_path": "../escape.json"})
    with pytest.raises(ValueError, match=r"package\.module:Class"):
        ServicePackage(**{**package.__dict__, "service": "app.service"})


def test_a_missing_package_file_names_the_file(tmp_path: Path) -> None:
    package = small_package(tmp_path)
    package.files[0].source.unlink()
    with pytest.raises(FileNotFoundError, match=r"service\.py"):
        layout(package, tmp_path / "context")


@pytest.fixture
def project_context(tmp_path: Path) -> Path:
    """The build context of the project's bento around a small imported model."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps({"feature_names": ["a", "b", "c"], "classes": [0, 1]})
    )
    store = BentoMLResource(bentoml_home=str(tmp_path / "bentoml"), max_rows=7)
    package = service_package(store, ImportedModel("m:v3-abc", model, True), PROVENANCE)
    root = tmp_path / "context"
    layout(package, root)
    return root


def test_the_projects_bento_carries_the_service_at_its_import_path(project_context: Path) -> None:
    module, _, attribute = SERVICE_IMPORT.partition(":")
    service = project_context / (module.replace(".", "/") + ".py")
    assert service.is_file()
    assert f"class {attribute}" in service.read_text()
    assert (project_context / PACKAGE / "__init__.py").is_file()
    assert (project_context / PACKAGE / "models" / "mlp.py").is_file()
    settings = json.loads((project_context / SETTINGS_PATH).read_text())
    assert settings["bento_model_tag"] == "m:v3-abc"
    assert (settings["n_features"], settings["classes"], settings["max_rows"]) == (3, [0, 1], 7)
    assert (settings["model_version"], settings["data_md5"]) == ("3", "md5-abc")
    requirements = (project_context / REQUIREMENTS).read_text()
    assert "bentoml==" in requirements and "mlx[cpu]==" in requirements


def test_every_project_import_of_the_bentos_code_resolves_inside_the_bento(
    project_context: Path,
) -> None:
    """The bento is self-contained: the service never reaches back into the source tree."""
    unresolved = []
    for path in (project_context / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.split(".")[0] != PACKAGE:
                    continue
                base = project_context / name.replace(".", "/")
                if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
                    unresolved.append(f"{path.name}: {name}")
    assert unresolved == []


def test_the_router_is_the_service_packages_router_run_from_this_tree() -> None:
    router = router_program()
    assert (router.cwd / (router.module.replace(".", "/") + ".py")).is_file()


# -- the deployment-record log -------------------------------------------------------------------


def test_records_are_appended_in_order_and_an_id_is_claimed_once(tmp_path: Path) -> None:
    log = DeploymentLog(tmp_path / "deployments")
    assert log.history() == [] and log.current() is None
    first = DeploymentRecord(
        deployment_id=1,
        model_name="m",
        action="deploy",
        mode="single",
        champion=ServedModel("1", "b:1"),
        canary=None,
        canary_share=0.0,
        requested_by="a",
        reason="r",
        created_at="t",
    )
    second = replace(
        first, deployment_id=2, mode="canary", canary=ServedModel("2", "b:2"), canary_share=0.1
    )
    log.write(first)
    path = log.write(second)
    assert [r.deployment_id for r in log.history()] == [1, 2]
    assert log.current() == second
    with pytest.raises(BentoStoreError, match="already exists: another deployment ran"):
        log.write(second)
    assert json.loads(path.read_text())["canary"]["model_version"] == "2"
    assert not [p for p in log.folder.iterdir() if p.name.startswith(".")]
    assert log.shadow_log_path(2) == log.folder / "shadow-000002.jsonl"


def test_make_serve_without_a_deployment_says_what_to_run_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFICIENTAI_HOME", str(tmp_path))
    monkeypatch.setenv("EFFICIENTAI_PROJECT", "demo")
    with pytest.raises(SystemExit, match=r"no deployment of demo-digits-classifier in .*make run"):
        serve_cli.main(["serve", "--port", "0"])


def test_a_model_config_without_features_or_classes_is_refused_by_name(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"classes": [0, 1]}))
    store = BentoMLResource(bentoml_home=str(tmp_path / "bentoml"))
    with pytest.raises(ValueError, match=r"lacks \['feature_names'\]"):
        service_package(store, ImportedModel("m:v1-abc", model, True), PROVENANCE)
