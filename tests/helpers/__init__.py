"""Helpers shared by the tests (importable as ``helpers.*``: pytest puts ``tests/`` on ``sys.path``).

* ``tiny``: the one tiny configuration (:data:`helpers.tiny.TINY`) and a prepared tiny synthetic set;
* ``stages``: a ``pipeline/<name>.py`` script loaded as a module, to call its ``main`` in-process;
* ``services``: MLflow / Ray / moto servers on free loopback ports, stopped by process group;
* ``official_layouts``: tiny VOC 2012, SBD and COCO 2014 trees in their official layouts;
* ``official_keys``: the key list of the authors' released checkpoint;
* ``synthetic``: a generated synthetic set indexed without the prepare stage.
"""
