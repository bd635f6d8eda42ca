"""wsfcn: WS-FCN (weakly-supervised semantic segmentation from image-level tags) as a pipeline.

The house, by floor; a module imports only from its own floor or lower ones (tests/test_layout.py)::

    7  cli.py, commands/, entry.py    the `wsfcn` command, its subcommands, how entry points exit
    6  sweep/                          plan.py (trials × seeds, resume), resources.py, trial.py, driver.py
    5  stages/                         one module per stage: download, prepare, train … tables, figures
    4  integrations/                   Ray (ray_cluster, ray_train, ray_tune), MLflow (mlflow_*): callables
    3  checkpoints.py  train/  infer/  evaluate/  report/
           checkpoints.py  kill-safe checkpoint files, model loading (below training and inference)
           train/     loop.py (fit), runtime.py, optim.py, figures.py
           infer/     options.py (InferOptions, CRFOptions), multiscale.py, split.py, crf.py
           evaluate/  metrics.py, folder.py, classification.py (tag mAP), figures.py
           report/    contract.py (the tags a run carries), runs.py, summary.py, tables.py, writers.py …
    2  model/                          backbones, context (FCA …), fusion (SF2 …), PAMR, gate, losses, weights
    1  data/                           synthetic, VOC + SBD, COCO, own images: download, prepare, check, load
    0  config.py (schema), params_yaml.py (reading), params_coerce.py, splits.py, params_io.py,
       code_version.py, experiments.py, arguments.py, device.py, errors.py

``pipeline/*.py`` (chained by ``dvc.yaml``) parse arguments, call one function of a ``wsfcn.stages``
module and turn its result into an exit status; ``pipeline/ablate.py`` runs the same stage functions
as Ray Tune trials. Only ``wsfcn/integrations/`` imports ray or mlflow.
"""
