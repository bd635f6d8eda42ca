"""Data: the embedded synthetic benchmark, VOC/COCO preparation, datasets and loaders (method §6.2, §8).

This file holds no code: import the module you need (``wsfcn.data.datasets``, ``wsfcn.data.classes``
...), so that a stage's code dependencies are exactly the modules it imports and CRF worker processes
or the prepare stage do not pull in torch.
"""
