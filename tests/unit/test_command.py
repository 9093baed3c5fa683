"""Command mode's choice of what the container runs (``domain.command``), row by row of
``/work/shared/anubis/KUBERNETES-EXECUTOR.md``'s table; the bootstrap itself runs in ``test_bootstrap.py``."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from sagemaker_executor.domain import bootstrap
from sagemaker_executor.domain.command import HOROVOD_NEEDS_TOOLKIT, command_mode
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.request import create_training_job_request
from sagemaker_executor.domain.translation import translate
from tests.builders import SITE, fetcher_event, minimal_contents

IMAGE = "python:3-alpine"


def plan(
    ml: dict[str, Any] | None,
    *,
    vars: dict[str, str] | None = None,
    scripts: list[str] | None = None,
    sources: list[dict[str, Any]] | None = None,
    datasets: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> Any:
    env: dict[str, Any] = {"docker_image": IMAGE, **({"vars": vars} if vars else {})}
    contents = minimal_contents(ml=ml, env=env, **sections)
    if sources is not None:
        contents["data"] = {"sources": sources}
    event = FetcherBenchmarkEvent.model_validate(fetcher_event(contents, datasets=datasets, scripts=scripts))
    channels = [d.id or f"src{i}" for i, d in enumerate(event.payload.datasets)] or ["src0"]
    return command_mode(parse_descriptor(contents), event, channels)


def test_benchmark_code_runs_through_the_bootstrap_in_the_code_channel() -> None:
    mode = plan({"benchmark_code": "python3 hello-world.py"})
    assert mode.container_entrypoint == ("sh", "/opt/ml/input/data/anubis_code/bootstrap.sh")
    assert mode.container_arguments == ()
    assert mode.bootstrap is not None
    assert "anubis_command='python3 hello-world.py'" in mode.bootstrap


def test_env_vars_are_the_jobs_environment_and_bai_scripts_path_only_with_scripts() -> None:
    without = plan({"benchmark_code": "run"}, vars={"A": "1"})
    assert without.environment == {"A": "1"}
    scripts = ["s3://scripts/anubis/abc/src.tar"]
    with_scripts = plan({"benchmark_code": "run"}, vars={"A": "1"}, scripts=scripts)
    assert with_scripts.environment == {"A": "1", "BAI_SCRIPTS_PATH": bootstrap.SCRIPTS_PATH}


def test_var_references_expand_from_the_environment_and_ml_args_follow() -> None:
    # Anubis's hello-world/descriptor-script-mode.toml, with arguments
    mode = plan(
        {"benchmark_code": "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh", "args": "--name $(WHO) 'a b'"},
        vars={"WHO": "anubis"},
        scripts=["s3://scripts/anubis/abc/src.tar"],
    )
    assert mode.bootstrap is not None
    expected = f"anubis_command='{bootstrap.SCRIPTS_PATH}/src/entrypoint.sh --name anubis '\"'\"'a b'\"'\"''"
    assert expected in mode.bootstrap


def test_only_ml_args_go_to_the_images_own_entrypoint() -> None:
    mode = plan({"args": "--epochs 2 $(WHO) $$(WHO) 'x y'"}, vars={"WHO": "me"})
    assert mode.container_entrypoint == ()
    assert mode.container_arguments == ("--epochs", "2", "me", "$(WHO)", "x y")
    assert mode.bootstrap is None
    assert mode.environment == {"WHO": "me"}


def test_neither_runs_the_images_own_entrypoint_and_command() -> None:
    mode = plan(None, vars={"A": "1"})
    assert (mode.container_entrypoint, mode.container_arguments, mode.bootstrap) == ((), (), None)
    assert mode.environment == {"A": "1"}


def test_each_dataset_is_linked_at_its_data_sources_path_from_its_channel() -> None:
    sources = [
        {"src": "s3://b/imagenet", "path": "/data/imagenet"},
        {"src": "s3://b/m", "path": "/m", "id": "m"},
    ]
    datasets = [{"dst": f"s3://d/{i}", **source} for i, source in enumerate(sources)]
    mode = plan({"benchmark_code": "run"}, sources=sources, datasets=datasets)
    assert mode.bootstrap is not None
    assert "anubis_link /data/imagenet /data src0\n" in mode.bootstrap
    assert "anubis_link /m / m\n" in mode.bootstrap
    assert """export SM_CHANNELS='["anubis_code", "m", "src0"]'""" in mode.bootstrap


def test_requirements_are_installed_only_when_there_can_be_some() -> None:
    install = "pip install -r"
    assert install not in (plan({"benchmark_code": "run"}).bootstrap or "")
    with_scripts = plan({"benchmark_code": "run"}, scripts=["s3://scripts/a/src.tar"])
    assert install in (with_scripts.bootstrap or "")
    extra = plan({"benchmark_code": "run"}, custom_params={"requirements": ["six"]})
    assert install in (extra.bootstrap or "")


def test_horovod_without_a_framework_is_refused_naming_the_images_that_run_it() -> None:
    hardware = {"instance_type": "ml.p3.8xlarge", "strategy": "horovod"}
    with pytest.raises(DescriptorError) as error:
        plan({"benchmark_code": "python train.py"}, hardware=hardware)
    assert error.value.field == "hardware.strategy"
    assert error.value.reason == HOROVOD_NEEDS_TOOLKIT
    assert "SageMaker training toolkit" in HOROVOD_NEEDS_TOOLKIT and "ml.framework" in HOROVOD_NEEDS_TOOLKIT


def test_a_dataset_named_like_the_code_channel_is_refused() -> None:
    sources = [{"src": "s3://b/x", "path": "/x", "id": bootstrap.CODE_CHANNEL}]
    datasets = [{"dst": "s3://d/0", **sources[0]}]
    with pytest.raises(DescriptorError, match=r"data\.sources\[0\]\.id"):
        plan({"benchmark_code": "run"}, sources=sources, datasets=datasets)


@pytest.mark.parametrize("ml", [{"benchmark_code": "run", "args": "'open"}, {"args": "'open"}])
def test_ml_args_that_cannot_be_split_are_refused(ml: dict[str, Any]) -> None:
    with pytest.raises(DescriptorError, match=r"ml\.args"):
        plan(ml)


def test_the_images_own_entrypoint_gets_ml_args_as_container_arguments_in_the_request() -> None:
    contents = minimal_contents(
        ml={"args": "--epochs 2 $(WHO)"}, env={"docker_image": IMAGE, "vars": {"WHO": "me"}}
    )
    event = FetcherBenchmarkEvent.model_validate(fetcher_event(contents))
    spec = translate(parse_descriptor(contents), event, SITE)
    request = create_training_job_request(spec, None, "us-east-1")
    assert request["AlgorithmSpecification"]["ContainerArguments"] == ["--epochs", "2", "me"]
    assert "ContainerEntrypoint" not in request["AlgorithmSpecification"]
    assert request["Environment"] == {"WHO": "me"}
    assert "HyperParameters" not in request  # no script mode: the image runs as it is


def test_without_ml_args_the_request_has_no_container_arguments() -> None:
    contents = minimal_contents(ml=None, env={"docker_image": IMAGE})
    spec = translate(
        parse_descriptor(contents), FetcherBenchmarkEvent.model_validate(fetcher_event(contents)), SITE
    )
    assert (
        "ContainerArguments"
        not in create_training_job_request(spec, None, "us-east-1")["AlgorithmSpecification"]
    )


def test_env_vars_are_expanded_from_the_ones_before_them_as_kubernetes_does() -> None:
    # Kubernetes expands $(VAR) in a container's env values from the variables defined before each, and
    # reads "$$" as "$"; the Anubis executor lists env.vars in order, then BAI_SCRIPTS_PATH.
    vars = {"A": "/a", "B": "$(A)/x $(C) $$(A) $(BAI_SCRIPTS_PATH)", "C": "c", "D": "$(C)"}
    mode = plan({"benchmark_code": "printf %s $(B)"}, vars=vars, scripts=["s3://b/s.tar"])
    expected = {"A": "/a", "B": "/a/x $(C) $(A) $(BAI_SCRIPTS_PATH)", "C": "c", "D": "c"}
    assert mode.environment == {**expected, "BAI_SCRIPTS_PATH": bootstrap.SCRIPTS_PATH}
    command = "printf %s '/a/x $(C) $(A) $(BAI_SCRIPTS_PATH)'"
    assert f"anubis_command={shlex.quote(command)}" in mode.bootstrap
    assert plan({"args": "$(D)"}, vars=vars).container_arguments == ("c",)
