"""The pipeline's stages, one module each: ``pipeline/*.py`` and the sweep trial call their functions.

``download → prepare → train → infer → crf → evaluate → tables`` (``dvc.yaml`` chains the scripts;
a sweep trial, :mod:`wsfcn.sweep.trial`, runs ``train`` … ``evaluate`` in one process), plus
``figures`` by hand. Each takes ``Params`` (and paths or run-time choices), does the stage's work and
returns a small frozen result; a bad input raises an error that names it (the entry points print it
as one line). Ray and MLflow are reached only through :mod:`wsfcn.integrations`.

This file holds no code: a stage module imports only what its stage runs, so ``dvc.yaml`` lists
exactly that code as the stage's dependencies (``tests/test_dvc_deps.py``).
"""
