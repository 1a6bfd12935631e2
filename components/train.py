"""The training component: one stage of the seed's recipe, run as a multi-worker TFJob.

The pipeline uses it once per stage (`stage` names the preset of `landmarks.train.recipe`)
and gives each task its display name, so the KFP UI still shows train-stage1,
train-stage2-vgg16, train-stage2-resnet50 and train-stage3.

The component itself only launches and follows the job (locally: processes on this
machine; on a cluster: a TFJob), so its pod stays small and on CPU. Where the replicas
run is decided by the launcher (`landmarks.tfjob.placement`): the `gpus_per_worker` and
`node_selector` parameters, over the task's `task_config`, over the training-defaults
ConfigMap of the landmarks-platform chart. A GPU request, node selector, tolerations or
affinity set on a training task do not apply to the component's own pod: KFP hands them
to it as its `task_config` (TaskConfig passthrough), and the launcher puts them on the
TFJob's replicas.
"""
# No `from __future__ import annotations`: KFP reads the real annotation objects.

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.base import landmarks_component

# What the launcher forwards to the replicas instead of applying it to its own pod. The
# task's env applies to both (the compiler refuses env on a passthrough task otherwise).
REPLICA_SETTINGS = [
    dsl.TaskConfigField.RESOURCES,
    dsl.TaskConfigField.KUBERNETES_NODE_SELECTOR,
    dsl.TaskConfigField.KUBERNETES_TOLERATIONS,
    dsl.TaskConfigField.KUBERNETES_AFFINITY,
    dsl.TaskConfigPassthrough(field=dsl.TaskConfigField.ENV, apply_to_task=True),
]
# The defaults -1 and "" of `gpus_per_worker` and `node_selector` below are
# landmarks.tfjob.placement's GPUS_NOT_SET and NODE_SELECTOR_NOT_SET, written as literals:
# KFP runs these functions from their source text, where a module constant is undefined.


@landmarks_component(task_config_passthroughs=REPLICA_SETTINGS)
def train(
    splits: Input[Dataset],
    model: Output[Model],
    scores: Output[Metrics],
    stage: str,
    weights: str = "",
    executor: str = "cluster",
    workers: int = 2,
    profile: str = "",
    epochs: int = 0,
    timeout_s: float = 0,
    trainer_image: str = "",
    namespace: str = "",
    run_id: str = "",
    kfp_task: str = "",
    gpus_per_worker: int = -1,
    node_selector: str = "",
    task_config: dsl.TaskConfig = None,
):
    """Train one stage: `stage1` (LeNet-5 at 128x128x3, the smoke run), `stage2-vgg16` or
    `stage2-resnet50` (transfer learning, no augmentation) or `stage3` (ResNet50 with
    rotation, shift and zoom augmentation).

    Args:
        splits: The split output.
        model: The trained model directory (model.keras, label map, history, logs).
        scores: The last epoch's loss, accuracy and validation metrics.
        stage: The stage preset: stage1, stage2-vgg16, stage2-resnet50 or stage3.
        weights: Base weights of stages 2 and 3: `imagenet`, `none`, or a no-top weights
            file (local, gs://, s3://, minio://; empty: the stage's preset).
        executor: `cluster` (a TFJob) or `local` (processes on this machine).
        workers: Data-parallel workers.
        profile: Trainer profile (`demo`, `tiny`); empty for the full recipe.
        epochs: Override the stage's epochs (0: keep).
        timeout_s: Fail the step after this many seconds (0: 24 h on a cluster, no limit locally).
        trainer_image: Image of the TFJob's replicas (cluster; empty: the package's default).
        namespace: Training namespace of the TFJob (cluster; empty: landmarks-training).
        run_id: The KFP run id; with kfp_task it names the TFJob, so a retry adopts it.
        kfp_task: The KFP task name.
        gpus_per_worker: GPUs per replica (cluster; -1: the task config's, else the chart's).
        node_selector: `key=value[,key=value]` labels of the replicas' nodes, or `none` for
            any node (cluster; empty: the task config's, else the chart's).
        task_config: The task's GPU, node selector, tolerations and affinity, for the replicas.
    """
    from landmarks.pipeline_steps.training import train_for_pipeline

    final = train_for_pipeline(
        stage=stage,
        splits_path=splits.path,
        splits_uri=splits.uri,
        model_path=model.path,
        model_uri=model.uri,
        executor=executor,
        task_name=f"train-{stage}",
        workers=workers,
        profile=profile,
        epochs=epochs,
        weights=weights,
        timeout_s=timeout_s,
        run_id=run_id,
        kfp_task=kfp_task,
        image=trainer_image,
        namespace=namespace,
        task_config=task_config,
        gpus_per_worker=gpus_per_worker,
        node_selector=node_selector,
    )
    for name, value in final.items():
        scores.log_metric(name, value)
