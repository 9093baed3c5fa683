"""Command mode's part of the training job: environment, container entrypoint and arguments, bootstrap.

Owns the choice, for a descriptor with no ``ml.framework``, of what the container runs, row by row of
``/work/shared/anubis/KUBERNETES-EXECUTOR.md`` ("The benchmark container"):

* ``ml.benchmark_code``: the bootstrap of ``domain.bootstrap`` runs it (``ContainerEntrypoint`` =
  ``sh /opt/ml/input/data/anubis_code/bootstrap.sh``), with ``ml.args`` appended, each ``data.sources[]``
  dataset linked at its ``path``, ``BAI_SCRIPTS_PATH`` set when there are scripts;
* only ``ml.args``: they are the container's arguments (``ContainerArguments``), ``$(VAR)``-expanded
  from ``env.vars`` as Kubernetes expands a container's ``args``, and the image's own entrypoint runs
  with them; the datasets are only in their channels, since nothing of the executor's runs to link
  them;
* neither: the image's own entrypoint and command;
* ``env.vars`` (and ``BAI_SCRIPTS_PATH``) are the job's ``Environment`` in every case, each value
  ``$(VAR)``-expanded from the ones before it, as Kubernetes expands a container's ``env``.

``hardware.strategy = "horovod"`` with ``ml.benchmark_code`` and no framework is refused: MPI is
launched by the SageMaker training toolkit, which only the framework images have (``ml.framework``
with a TensorFlow, PyTorch or MXNet image: script mode). Without ``ml.benchmark_code`` the image's own
entrypoint is in charge; it gets the MPI request as the generic Estimator sends it
(``sagemaker_mpi_*`` hyperparameters, ``domain.translation``), for an image built on the toolkit.

Pure; called by ``domain.translation``. SageMaker's limits on what this produces (botocore's model:
256 characters per entrypoint string and argument, 100 of each; 100 environment variables, names and
values of at most 512 characters) are ``domain.preflight``'s to check, in the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sagemaker_executor.domain import bootstrap
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.expansion import expand
from sagemaker_executor.domain.sections import Descriptor, Strategy
from sagemaker_executor.domain.shell import split_args

HOROVOD_NEEDS_TOOLKIT = (
    "'horovod' needs an image with the SageMaker training toolkit, which launches MPI: set ml.framework "
    "(tensorflow, pytorch or mxnet) and use that framework's SageMaker training image or one built on it; "
    "without ml.framework the benchmark runs in command mode, one process per instance, in any image"
)


@dataclass(frozen=True)
class CommandMode:
    """What the container runs in command mode (``AlgorithmSpecification`` and ``Environment``)."""

    environment: dict[str, str]
    container_entrypoint: tuple[str, ...] = ()
    container_arguments: tuple[str, ...] = ()
    bootstrap: str | None = None  # the text of bootstrap.sh, in the code channel; None: no code channel


def command_mode(
    descriptor: Descriptor, event: FetcherBenchmarkEvent, channels: Sequence[str]
) -> CommandMode:
    """Command mode for ``descriptor`` (no ``ml.framework``), whose job has the input ``channels``.

    Raises :class:`DescriptorError` for Horovod, a dataset channel named like the code channel, and
    what the bootstrap refuses (``DescriptorError``: a blank command, unsplittable ``ml.args``, a
    relative ``data.sources[].path``).
    """
    ml = descriptor.ml
    benchmark_code = ml.benchmark_code if ml is not None else None
    args = ml.args if ml is not None else None
    environment = kubernetes_environment(descriptor.env.vars)
    if not benchmark_code:
        return CommandMode(environment, container_arguments=container_arguments(args, environment))
    if descriptor.hardware.strategy is Strategy.HOROVOD:
        raise DescriptorError("hardware.strategy", HOROVOD_NEEDS_TOOLKIT)
    for index, name in enumerate(channels):
        if name == bootstrap.CODE_CHANNEL:
            raise DescriptorError(
                f"data.sources[{index}].id", f"{name!r} is the name of the executor's own code channel"
            )
        if name in (".", ".."):  # its directory /opt/ml/input/data/<name> would be another one
            raise DescriptorError(f"data.sources[{index}].id", f"{name!r} cannot name a channel's directory")
    if event.payload.scripts:
        environment[bootstrap.SCRIPTS_PATH_VARIABLE] = bootstrap.SCRIPTS_PATH
    params = descriptor.custom_params
    requirements = bool(event.payload.scripts) or bool(params is not None and params.requirements)
    text = bootstrap.render_bootstrap(
        bootstrap.command_text(benchmark_code, args, environment),
        [bootstrap.CODE_CHANNEL, *channels],
        _data_links(event),
        requirements,
        scripts=bool(event.payload.scripts),
    )
    return CommandMode(environment, tuple(bootstrap.container_entrypoint()), (), text)


def kubernetes_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """``env.vars`` as the container gets them on Kubernetes, which ``$(VAR)``-expands each value from
    the variables listed before it (the Anubis executor lists ``env.vars`` in order, then
    ``BAI_SCRIPTS_PATH``): ``B = "$(A)/x"`` after ``A = "/a"`` is ``/a/x``, ``"a$$b"`` is ``a$b``."""
    environment: dict[str, str] = {}
    for name, value in variables.items():
        environment[name] = expand(value, environment)
    return environment


def container_arguments(args: str | None, environment: Mapping[str, str]) -> tuple[str, ...]:
    """``shlex.split(ml.args)``, each ``$(VAR)``-expanded, as Kubernetes builds a container's ``args``."""
    if not args:
        return ()
    return tuple(expand(word, environment) for word in split_args(args))


def _data_links(event: FetcherBenchmarkEvent) -> list[bootstrap.DataLink]:
    """Each fetched dataset's ``path`` (the fetcher's copy of ``data.sources[i].path``) with its channel,
    named as ``translation.input_channels`` names it (``id``, else ``src<i>``)."""
    return [
        bootstrap.DataLink(dataset.path, dataset.id or f"src{index}")
        for index, dataset in enumerate(event.payload.datasets)
    ]
