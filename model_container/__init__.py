"""The abalone model image: preprocess | train | evaluate | serve on SageMaker's container contract.

Modules: ``app`` (entry point, one mode per run), ``schema`` (row schema and validation, stdlib only,
shared with ``workflows/``), ``preprocess`` (stdlib only), ``training`` (Keras), ``predictor`` (feature
preparation and the numpy forward pass used by ``evaluate`` and ``serve``), ``evaluate``, ``serve``
(WSGI app under gunicorn), ``paths`` (``/opt/ml`` or ``$OPT_ML_ROOT``).
"""
